"""A small, realistic network to try the hub with: `hub demo` on an empty database.

Montréal community organizations, regional partners in Bas-Saint-Laurent and Estrie, an
entrepreneurship agency, a cooperative development body, an insertion enterprise and a
coordination body, each with an OAuth client, and a few referrals already under way, a
settled peer in Rimouski with a match proposed to a newcomer heading there, two opportunities
published in Bas-Saint-Laurent that the Carrefour follows (with the daily mail); and portal users
(a counsellor, partner staff, a coordinator) sharing one demo password.

And a history to look at: months of referrals in every status, acknowledged sooner or later
for the coordinators' charts, some open ones past their deadlines as of now for the stalled
handoffs. They are made by the hub's own use cases, then dated back (the legs' dates and
deadlines; the event log, which is never rewritten, keeps the day `hub demo` ran).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from hub.accounts import clients, users
from hub.accounts.callers import Caller
from hub.consent import consents
from hub.db import utcnow
from hub.directory import relationships
from hub.directory.organizations import Organization, create_organization
from hub.opportunities import publishing
from hub.peers import matching
from hub.referrals.handoffs import send_referral, transition
from hub.referrals.legs import Referral
from hub.referrals.lifecycle import Action
from hub.referrals.participants import register_participant

ORGANIZATIONS = [
    ("Carrefour d'intégration de Montréal", "community", "06"),
    ("Centre d'emploi des nouveaux arrivants — Côte-des-Neiges", "community", "06"),
    ("Place aux jeunes Bas-Saint-Laurent", "regional_partner", "01"),
    ("Accueil Estrie — installation en région", "regional_partner", "05"),
    ("Entreprendre ici — agence d'entrepreneuriat", "entrepreneurship_agency", "06"),
    ("Coopérative de développement régional du Québec", "cooperative_development", "06"),
    ("Atelier d'insertion Le Tremplin", "insertion_enterprise", "06"),
    ("Table de concertation — réseau Maillage", "coordination", "06"),
    ("CISSS du Bas-Saint-Laurent — accueil psychosocial", "public_institution", "01"),
]


# Development only: `hub demo` prints it; a real deployment creates users with `hub user create`.
DEMO_PASSWORD = "maillage-demo-2026"
# (organization index in ORGANIZATIONS, email, name, role, French form of address)
DEMO_USERS = [
    (0, "conseillere@carrefour.example.org", "Sophie Tremblay", "counsellor", "feminine"),
    (2, "accueil@paj-bsl.example.org", "Marc Gagnon", "partner_staff", "masculine"),
    (3, "accueil@estrie.example.org", "Julie Roy", "partner_staff", "feminine"),
    (4, "conseiller@entreprendre.example.org", "Karim Haddad", "partner_staff", "masculine"),
    (7, "coordination@maillage.example.org", "Nadia Côté", "coordinator", "feminine"),
]


class NotEmpty(Exception):
    def __str__(self) -> str:
        return "The database already has organizations; `hub demo` only fills an empty one."


def _caller(organization: Organization, client: clients.OAuthClient) -> Caller:
    return Caller(organization.id, f"client:{client.client_id}", organization.is_coordinator)


def fill(session: Session) -> list[dict[str, Any]]:
    """Create the demo network; returns each organization with its client credentials."""
    if session.scalar(select(func.count()).select_from(Organization)):
        raise NotEmpty()
    members = []
    for name, kind, region in ORGANIZATIONS:
        organization = create_organization(session, name=name, kind=kind, region=region)
        # Coordinators watch the network; hub:admin is only ever given by name.
        scopes = ([s for s in clients.SCOPES if s != "hub:admin"]
                  if organization.is_coordinator else None)
        client, secret = clients.create_client(session, organization=organization,
                                                scopes=scopes)
        members.append((organization, client, secret))

    portal_users: dict[int, list[dict[str, str]]] = {}
    actors: dict[int, str] = {}
    for index, email, name, role, french_form in DEMO_USERS:
        user = users.create_user(session, organization=members[index][0], email=email,
                                 role=role, password=DEMO_PASSWORD, name=name,
                                 french_form=french_form)
        portal_users.setdefault(index, []).append({"email": user.email, "role": user.role})
        actors.setdefault(index, user.caller.actor)

    carrefour, centre, bas_saint_laurent, estrie, agence, *_ = members
    sender = _caller(carrefour[0], carrefour[1])
    # What the Carrefour's counsellors know of their collaboration with a regional partner.
    relationships.write_note(
        session, carrefour[0].id, bas_saint_laurent[0].id,
        relationships.NoteText("Séjours exploratoires",
                               "Joindre l'agent de migration le matin; il connaît les "
                               "logements libres à Rimouski."),
        updated_by=actors[0])
    amina = register_participant(session, organization_id=carrefour[0].id, given_name="Amina",
                                 family_name="Benali", preferred_language="fr", region="06",
                                 email="amina.benali@example.org")
    consents.grant(session, sender, amina.id, purpose="referral_sharing", evidence="written",
                  organization_ids=[bas_saint_laurent[0].id, estrie[0].id],
                  note="Formulaire signé lors de l'entrevue")
    consents.grant(session, sender, amina.id, purpose="follow_up_contact", evidence="written",
                  network_wide=True)
    leg = send_referral(session, sender, participant_id=amina.id,
                        to_organization_id=bas_saint_laurent[0].id, pathway="settlement",
                        priority="urgent", needs=["logement"],
                        reason_for_referral="Offre d'emploi à Rimouski, début lundi")
    regional = _caller(bas_saint_laurent[0], bas_saint_laurent[1])
    transition(session, regional, leg.id, Action.ACKNOWLEDGE)
    transition(session, regional, leg.id, Action.ACCEPT, note="Rendez-vous le 2 décembre")

    diego = register_participant(session, organization_id=centre[0].id, given_name="Diego",
                                 family_name="Ramírez", preferred_language="es")
    consents.grant(session, _caller(centre[0], centre[1]), diego.id,
                  purpose="referral_sharing", evidence="verbal", network_wide=True)
    send_referral(session, _caller(centre[0], centre[1]), participant_id=diego.id,
                  to_organization_id=agence[0].id, pathway="entrepreneurship",
                  stage="exploration", reason_for_referral="Projet de traiteur")
    send_referral(session, sender, participant_id=amina.id, to_organization_id=estrie[0].id,
                  pathway="training", needs=["francisation"])

    # A peer who settled in Rimouski two years ago, and Amina, heading there, proposed to him.
    youssef = register_participant(session, organization_id=bas_saint_laurent[0].id,
                                   given_name="Youssef", family_name="Amrani",
                                   preferred_language="fr", region="01",
                                   email="youssef.amrani@example.org")
    consents.grant(session, regional, youssef.id, purpose="peer_matching", evidence="written",
                  network_wide=True, note="Accepte d'aider les nouveaux arrivants")
    peer = matching.enrol(session, regional, participant_id=youssef.id, region="01",
                          municipality="Rimouski", languages=["fr", "ar"],
                          pathways=["employment", "settlement"],
                          offers=["talk_settlement", "visit_places"],
                          contact_channels=["email"], settled_since=date(2024, 9, 1))
    consents.grant(session, sender, amina.id, purpose="peer_matching", evidence="written",
                  network_wide=True)
    matching.propose(session, sender, peer_id=peer.id, participant_id=amina.id,
                     referral_id=leg.id, note="Amina arrive avec son conjoint et deux enfants.")

    # A regional partner's offers, heard of in Montréal: the Carrefour follows the region.
    today = utcnow().date()
    publishing.publish(
        session, regional, title="Soudeur ou soudeuse — quart de jour", kind="job",
        region="01", municipality="Rimouski", pathways=["employment", "settlement"],
        description="Usine de structures d'acier, poste permanent. Formation à l'arrivée; "
                    "l'employeur aide à trouver un logement.",
        languages=["fr"], starts_on=today + timedelta(days=21),
        closes_on=today + timedelta(days=14), places=2)
    publishing.publish(
        session, regional, title="Préposé·e aux bénéficiaires — formation rémunérée",
        kind="training", region="01", municipality="Rivière-du-Loup",
        pathways=["training", "employment"],
        description="Formation de 375 heures payée, emploi au CISSS à la fin.",
        languages=["fr"], closes_on=today + timedelta(days=30), places=6)
    publishing.follow_regions(session, sender, ["01", "05"], daily_mail=True)

    _history(session, members)

    return [{"organization_id": str(org.id), "name": org.name, "kind": org.kind,
             "region": org.region, "client_id": client.client_id, "client_secret": secret,
             "portal_users": portal_users.get(index, [])}
            for index, (org, client, secret) in enumerate(members)]


HISTORY_PEOPLE = [
    ("Fatou", "Diallo", "fr"), ("Olena", "Kovalenko", "uk"), ("Wei", "Zhang", "zh"),
    ("Youssef", "El Amrani", "ar"), ("Sofía", "Hernández", "es"), ("Mariam", "Haddad", "ar"),
    ("Thi", "Nguyen", "vi"), ("Ahmed", "Khan", "ur"), ("Ana", "Silva", "pt"),
    ("Jean-Baptiste", "Pierre", "ht"), ("Maria", "Santos", "tl"), ("Reza", "Karimi", "fa"),
    ("Kateryna", "Shevchenko", "uk"), ("Carlos", "Martínez", "es"), ("Aïcha", "Traoré", "fr"),
    ("Samira", "Benali", "ar"), ("Pedro", "Rodríguez", "es"), ("Li", "Chen", "zh"),
    ("Imane", "Ouellet", "fr"), ("Mamadou", "Ndiaye", "wo"), ("Oksana", "Tkachenko", "ru"),
    ("José", "García", "es"), ("Farah", "Rahman", "bn"), ("Rania", "Saleh", "ar"),
]
# (what happens to the leg, days ago it was sent, hours the receiver took to acknowledge)
HISTORY_PATHS = [
    ("completed", 150, 6), ("completed", 140, 30), ("completed", 120, 3),
    ("completed", 110, 50), ("completed", 95, 8), ("completed", 80, 20),
    ("declined", 130, 12), ("declined", 70, 70), ("cancelled", 100, 0),
    ("completed", 60, 4), ("completed", 55, 26), ("in_progress", 40, 10),
    ("forwarded", 45, 16), ("accepted", 30, 9), ("completed", 35, 2),
    ("completed", 25, 40), ("acknowledged", 12, 5), ("stalled_sent", 6, 0),
    ("stalled_sent", 9, 0), ("stalled_acknowledged", 14, 7), ("stalled_accepted", 20, 18),
    ("completed", 20, 12), ("sent", 0, 0), ("declined", 15, 3),
]
OUTCOMES = ["employed", "settled", "in_training", "service_delivered", "employed", "settled"]


def _history(session: Session, members: list[Any]) -> None:
    """Past referrals from the two Montréal organizations to the partners, one per person of
    `HISTORY_PEOPLE`, each following its path of `HISTORY_PATHS`, then dated back."""
    carrefour, centre, bas_saint_laurent, estrie, agence, coop, atelier = members[:7]
    receivers = [(bas_saint_laurent, "settlement"), (estrie, "settlement"),
                 (atelier, "employment"), (agence, "entrepreneurship"),
                 (coop, "cooperative_entrepreneurship")]
    now = utcnow()
    for number, ((given, family, language), (path, days_ago, hours)) in enumerate(
            zip(HISTORY_PEOPLE, HISTORY_PATHS, strict=True)):
        (organization, client, _secret) = (carrefour, centre)[number % 2]
        sender = _caller(organization, client)
        (receiver, pathway) = receivers[number % len(receivers)]
        answering = _caller(receiver[0], receiver[1])
        person = register_participant(
            session, organization_id=organization.id, given_name=given, family_name=family,
            preferred_language=language, region="06",
            email=f"{given.lower()}.{number}@example.org".replace("ï", "i").replace("í", "i"))
        for purpose in ("referral_sharing", "outcome_reporting", "follow_up_contact"):
            consents.grant(session, sender, person.id, purpose=purpose, evidence="written",
                          network_wide=True)
        leg = send_referral(
            session, sender, participant_id=person.id, to_organization_id=receiver[0].id,
            pathway=pathway, priority="urgent" if number % 5 == 0 else "routine",
            stage="exploration" if "entrepreneurship" in pathway else None,
            reason_for_referral="Installation et recherche d'emploi en région",
            needs=["logement", "francisation"][: 1 + number % 2])
        steps: list[tuple[Action, dict[str, Any]]] = []
        if path not in ("sent", "stalled_sent", "cancelled"):
            steps.append((Action.ACKNOWLEDGE, {}))
        if path in ("accepted", "in_progress", "completed", "stalled_accepted"):
            steps.append((Action.ACCEPT, {"note": "Premier rendez-vous fixé"}))
        if path in ("in_progress", "completed"):
            steps.append((Action.START, {}))
        if path == "completed":
            steps.append((Action.COMPLETE, {"outcome": OUTCOMES[number % len(OUTCOMES)]}))
        if path == "declined":
            steps.append((Action.DECLINE, {"reason": "no_capacity"}))
        if path == "forwarded":
            steps.append((Action.FORWARD, {"to_organization_id": estrie[0].id
                                           if receiver is not estrie else bas_saint_laurent[0].id}))
        for action, fields in steps:
            transition(session, answering, leg.id, action, **fields)
        if path == "cancelled":
            transition(session, sender, leg.id, Action.CANCEL, reason="referred_elsewhere")
        _date_back(session, leg.id, path, now - timedelta(days=days_ago), hours)


def _date_back(session: Session, leg_id: Any, path: str, sent: Any, hours: int) -> None:
    """The leg as if sent at `sent` and acknowledged `hours` later; a stalled one's current
    deadline already passed (a day or more ago)."""
    session.flush()
    leg = session.get(Referral, leg_id)
    assert leg is not None
    shift = leg.created_at - sent
    values: dict[str, Any] = {"created_at": sent, "updated_at": leg.updated_at - shift}
    for column in ("acknowledge_by", "decide_by", "start_by", "closed_at"):
        if getattr(leg, column, None) is not None:
            values[column] = getattr(leg, column) - shift
    if leg.acknowledged_at is not None:
        values["acknowledged_at"] = sent + timedelta(hours=hours)
    session.execute(update(Referral).where(Referral.id == leg_id).values(values)
                    .execution_options(synchronize_session=False))


def empty_database(database_url: str) -> None:
    """Remove every table of the database, then make them again from the migrations: the
    empty database `hub demo` fills (`hub demo --reset`, development only)."""
    from sqlalchemy import create_engine, inspect, text

    from hub.ops import upgrade_database

    engine = create_engine(database_url)
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        else:
            connection.execute(text("PRAGMA foreign_keys = OFF"))
            for table in inspect(connection).get_table_names():
                connection.execute(text(f'DROP TABLE "{table}"'))
    engine.dispose()
    upgrade_database(database_url)
