"""A small, realistic network to try the hub with: `hub demo` on an empty database.

Montréal community organizations, regional partners in Bas-Saint-Laurent and Estrie, an
entrepreneurship agency, a cooperative development body, an insertion enterprise and a
coordination body, each with an OAuth client, and a few referrals already under way, a
settled peer in Rimouski with a match proposed to a newcomer heading there; and portal users
(a counsellor, partner staff, a coordinator) sharing one demo password.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.accounts import clients, users
from hub.accounts.callers import Caller
from hub.consent import consents
from hub.directory import relationships
from hub.directory.organizations import Organization, create_organization
from hub.peers import matching
from hub.referrals.handoffs import send_referral, transition
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
# (organization index in ORGANIZATIONS, email, name, role)
DEMO_USERS = [
    (0, "conseillere@carrefour.example.org", "Sophie Tremblay", "counsellor"),
    (2, "accueil@paj-bsl.example.org", "Marc Gagnon", "partner_staff"),
    (3, "accueil@estrie.example.org", "Julie Roy", "partner_staff"),
    (4, "conseiller@entreprendre.example.org", "Karim Haddad", "partner_staff"),
    (7, "coordination@maillage.example.org", "Nadia Côté", "coordinator"),
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
    for index, email, name, role in DEMO_USERS:
        user = users.create_user(session, organization=members[index][0], email=email,
                                 role=role, password=DEMO_PASSWORD, name=name)
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

    return [{"organization_id": str(org.id), "name": org.name, "kind": org.kind,
             "region": org.region, "client_id": client.client_id, "client_secret": secret,
             "portal_users": portal_users.get(index, [])}
            for index, (org, client, secret) in enumerate(members)]
