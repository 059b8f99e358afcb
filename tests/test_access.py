"""Access control: who may associate (address, AE titles, user identity), what each
calling AE may use, and how a refusal is answered (the A-ASSOCIATE-RJ reasons of PS3.8
9.3.4) and logged (with the peer's address and the reason)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time

import pytest

from dimse import AE, evt, sop
from dimse.exceptions import InvalidArgument
from dimse.pdu_primitives import UserIdentityNegotiation

STUDY_FIND = sop.StudyRootQueryRetrieveInformationModelFind


@pytest.fixture
def server():
    """Starts an SCP (Verification, CT storage, Study Root FIND) with the AE settings given."""
    servers = []

    def start(handlers=(), **settings):
        ae = AE("GUARDED")
        ae.acse_timeout = 5
        for name, value in settings.items():
            setattr(ae, name, value)
        ae.add_supported_context(sop.Verification)
        ae.add_supported_context(sop.CTImageStorage)
        ae.add_supported_context(STUDY_FIND)
        srv = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=list(handlers))
        servers.append(srv)
        return srv.server_address[1]

    yield start
    for srv in servers:
        srv.shutdown()


def scu(calling: str = "CALLER") -> AE:
    ae = AE(calling)
    ae.acse_timeout = 5
    ae.dimse_timeout = 5
    ae.add_requested_context(sop.Verification)
    ae.add_requested_context(sop.CTImageStorage)
    ae.add_requested_context(STUDY_FIND)
    return ae


def rejection(assoc) -> tuple[int, int, int]:
    assert not assoc.is_established
    return assoc.result, assoc.result_source, assoc.diagnostic


def logged(caplog: pytest.LogCaptureFixture, text: str) -> str:
    """The rejection log lines containing `text` (written from the server's notification
    threads a moment after the peer has its answer)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        found = [r.getMessage() for r in caplog.records if text in r.getMessage()]
        if found:
            return "\n".join(found)
        time.sleep(0.02)
    raise AssertionError(
        f"nothing logged with {text!r}: {[r.getMessage() for r in caplog.records]}"
    )


def test_allowed_networks(server, caplog):
    port = server(allowed_networks=["10.0.0.0/8", "192.168.7.1"])
    with caplog.at_level(logging.WARNING, logger="dimse"):
        assoc = scu().associate("127.0.0.1", port)
        # Permanent, service-user, no reason given: PS3.8 has no reason code for an address.
        assert rejection(assoc) == (1, 1, 1)
        line = logged(caplog, "rejected")
    assert "association from 127.0.0.1:" in line
    assert "127.0.0.1 is in none of the allowed networks" in line
    port = server(allowed_networks=["127.0.0.0/8"])
    with scu().associate("127.0.0.1", port) as assoc:
        assert assoc.send_c_echo().Status == 0


def test_allowed_networks_are_checked_when_set():
    ae = AE()
    ae.allowed_networks = [" 10.1.2.3 ", "fd00::/8", "10.0.0.1/8"]
    assert ae.allowed_networks == ["10.1.2.3/32", "fd00::/8", "10.0.0.0/8"]
    with pytest.raises(InvalidArgument, match=r"'pacs\.local' is not an address or network"):
        ae.allowed_networks = ["pacs.local"]
    with pytest.raises(InvalidArgument, match=r"10\.0\.0\.0/33"):
        ae.allowed_networks = ["10.0.0.0/33"]
    with pytest.raises(InvalidArgument, match=r"write \['10.0.0.0/8'\]"):
        ae.allowed_networks = "10.0.0.0/8"  # type: ignore[assignment]


def test_calling_and_called_ae_titles(server, caplog):
    port = server(require_calling_aet=["MODALITY"], require_called_aet=True)
    with caplog.at_level(logging.WARNING, logger="dimse"):
        assert rejection(scu("INTRUDER").associate("127.0.0.1", port, ae_title="GUARDED")) == (
            1,
            1,
            3,
        )
        assert "calling AE title 'INTRUDER' is not allowed" in logged(caplog, "INTRUDER")
        assert rejection(scu("MODALITY").associate("127.0.0.1", port, ae_title="OTHER")) == (
            1,
            1,
            7,
        )
        assert "called AE title 'OTHER' is not ours ('GUARDED')" in logged(caplog, "OTHER")
    with scu("MODALITY").associate("127.0.0.1", port, ae_title="GUARDED") as assoc:
        assert assoc.send_c_echo().Status == 0


def test_required_user_identity(server, caplog):
    def on_user_id(event):
        ok = event.primary_field == b"alice" and event.secondary_field == b"s3cret"
        return ok, None

    port = server(handlers=[(evt.EVT_USER_ID, on_user_id)], require_user_identity=True)
    with caplog.at_level(logging.WARNING, logger="dimse"):
        assert rejection(scu().associate("127.0.0.1", port)) == (1, 1, 1)
        assert "sent no user identity, which is required" in logged(caplog, "no user identity")
        wrong = UserIdentityNegotiation(2, b"alice", b"guess")
        assert rejection(scu().associate("127.0.0.1", port, ext_neg=[wrong])) == (1, 1, 1)
        assert "'alice') was refused" in logged(caplog, "was refused")
    right = UserIdentityNegotiation(2, b"alice", b"s3cret")
    with scu().associate("127.0.0.1", port, ext_neg=[right]) as assoc:
        assert assoc.send_c_echo().Status == 0


def test_permissions_per_calling_ae(server, caplog):
    port = server(
        permissions={
            "CT_SCANNER": ["echo", "store"],
            "VIEWER": ["echo", STUDY_FIND],
            "*": ["echo"],
        }
    )

    def accepted(calling: str) -> set[str]:
        with scu(calling).associate("127.0.0.1", port) as assoc:
            rejected = {pc.abstract_syntax: pc.result for pc in assoc.rejected_contexts}
            # Refused by the user (PS3.8 9.3.3.2 result 1), not "not supported" (3).
            assert set(rejected.values()) <= {1}
            return {pc.abstract_syntax for pc in assoc.accepted_contexts}

    assert accepted("CT_SCANNER") == {sop.Verification, sop.CTImageStorage}
    assert accepted("VIEWER") == {sop.Verification, STUDY_FIND}
    assert accepted("ANYONE") == {sop.Verification}
    # Without "*", an AE title that is not listed is not recognized.
    port = server(permissions={"CT_SCANNER": ["store"]})
    with caplog.at_level(logging.WARNING, logger="dimse"):
        assert rejection(scu("ANYONE").associate("127.0.0.1", port)) == (1, 1, 3)
        assert "'ANYONE' is not allowed" in logged(caplog, "ANYONE")
    with scu("CT_SCANNER").associate("127.0.0.1", port) as assoc:
        assert {pc.abstract_syntax for pc in assoc.accepted_contexts} == {sop.CTImageStorage}


def test_permissions_are_checked_when_set():
    ae = AE()
    ae.permissions = {"CT": ["store", "1.2.840.10008.1.20.1"], "*": []}
    assert ae.permissions == {"CT": ["store", "1.2.840.10008.1.20.1"], "*": []}
    ae.permissions = None
    assert ae.permissions is None
    with pytest.raises(InvalidArgument, match="'stor' is neither a service"):
        ae.permissions = {"CT": ["stor"]}
    with pytest.raises(InvalidArgument, match=r"write \['store'\]"):
        ae.permissions = {"CT": "store"}
    with pytest.raises(InvalidArgument, match="calling AE title"):
        ae.permissions = {"A" * 17: ["echo"]}
    with pytest.raises(InvalidArgument, match="must map calling AE titles"):
        ae.permissions = ["echo"]  # type: ignore[assignment]


def test_per_peer_limit_is_logged(server, caplog):
    port = server(maximum_associations_per_peer=1)
    with scu().associate("127.0.0.1", port) as first:
        with caplog.at_level(logging.WARNING, logger="dimse"):
            # Transient, service-provider (presentation), local limit exceeded.
            assert rejection(scu().associate("127.0.0.1", port)) == (2, 3, 2)
            line = logged(caplog, "per client address")
        assert "127.0.0.1 holds 1 associations already" in line
        assert first.send_c_echo().Status == 0
    with scu().associate("127.0.0.1", port) as again:
        assert again.send_c_echo().Status == 0


def test_every_refusal_leaves_the_server_serving(server):
    port = server(
        allowed_networks=["127.0.0.1"],
        require_calling_aet=["OK"],
        maximum_associations_per_peer=3,
    )
    for _ in range(20):
        assert not scu("BAD").associate("127.0.0.1", port).is_established
    with scu("OK").associate("127.0.0.1", port) as assoc:
        assert assoc.send_c_echo().Status == 0


def _jwt(claims: dict, key: bytes) -> bytes:
    """A compact HS256 JSON Web Token (RFC 7519)."""

    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    signature = hmac.new(key, header + b"." + body, hashlib.sha256).digest()
    return header + b"." + body + b"." + b64(signature)


def test_jwt_user_identity_verified_by_the_handler(server):
    """PS3.7 D.3.3.7 type 5 (JWT): the EVT_USER_ID handler checks the signature and the
    expiry, and answers the positive response the requestor asked for."""
    key = b"shared-secret"

    def on_user_id(event):
        if event.user_id_type != 5:
            return False, None
        header, body, signature = event.primary_field.split(b".")
        expected = hmac.new(key, header + b"." + body, hashlib.sha256).digest()
        padded = signature + b"=" * (-len(signature) % 4)
        if not hmac.compare_digest(base64.urlsafe_b64decode(padded), expected):
            return False, None
        claims = json.loads(base64.urlsafe_b64decode(body + b"=" * (-len(body) % 4)))
        return claims["exp"] > time.time(), b"welcome " + claims["sub"].encode()

    port = server(handlers=[(evt.EVT_USER_ID, on_user_id)], require_user_identity=True)
    good = _jwt({"sub": "ct1", "exp": time.time() + 60}, key)
    identity = UserIdentityNegotiation(5, good, b"", positive_response_requested=True)
    with scu().associate("127.0.0.1", port, ext_neg=[identity]) as assoc:
        assert assoc.negotiated["user_identity_response"] == b"welcome ct1"
        assert assoc.send_c_echo().Status == 0
    forged = _jwt({"sub": "ct1", "exp": time.time() + 60}, b"guessed")
    expired = _jwt({"sub": "ct1", "exp": time.time() - 1}, key)
    for token in (forged, expired):
        refused = scu().associate("127.0.0.1", port, ext_neg=[UserIdentityNegotiation(5, token)])
        assert rejection(refused) == (1, 1, 1)
