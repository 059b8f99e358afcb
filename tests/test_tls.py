"""TLS (PS3.15 Annex B): dimse to dimse, mutual TLS, every way a handshake can fail, the
apps' --tls-* options, and interop with DCMTK's +tls tools and with Python's ssl
(pynetdicom)."""

from __future__ import annotations

import logging
import socket
import ssl
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

import dimse
from dimse import AE, TLS, evt, sop
from dimse.exceptions import AssociationAborted, InvalidArgument, TLSError
from peers import dcmtk_env, dcmtk_tool, free_port, wait_for_port
from tlscerts import PKI, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


def ct_dataset() -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = sop.CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.PatientName = "TLS^Test"
    ds.PatientID = "TLS1"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "CT"
    ds.Rows = ds.Columns = 8
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelRepresentation = 0
    ds.PixelData = bytes(range(128))
    return ds


def save(ds: Dataset, path: Path) -> None:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True)


@pytest.fixture
def tls_server():
    """Starts our Verification + CT storage SCP with the given TLS; returns (port, received)."""
    servers: list[dimse.Server] = []

    def start(tls: TLS | None, **settings: object) -> tuple[int, list[Dataset]]:
        received: list[Dataset] = []

        def on_store(event: evt.Event) -> int:
            received.append(event.dataset)
            return 0x0000

        ae = AE("TLS_SCP")
        ae.acse_timeout = 5
        for name, value in settings.items():
            setattr(ae, name, value)
        ae.add_supported_context(sop.Verification)
        ae.add_supported_context(sop.CTImageStorage)
        server = ae.start_server(
            ("127.0.0.1", 0), block=False, tls=tls, evt_handlers=[(evt.EVT_C_STORE, on_store)]
        )
        assert server is not None
        servers.append(server)
        return server.server_address[1], received

    yield start
    for server in servers:
        server.shutdown()


def client_ae() -> AE:
    ae = AE("TLS_SCU")
    ae.acse_timeout = 5
    ae.dimse_timeout = 5
    ae.add_requested_context(sop.Verification)
    ae.add_requested_context(sop.CTImageStorage, ExplicitVRLittleEndian)
    return ae


def echo(port: int, tls: TLS | None, host: str = "127.0.0.1") -> int:
    with client_ae().associate(host, port, ae_title="TLS_SCP", tls=tls) as assoc:
        return int(assoc.send_c_echo().Status)


def test_echo_and_store_over_tls(pki, tls_server):
    port, received = tls_server(TLS(cert=pki.server.cert, key=pki.server.key))
    ds = ct_dataset()
    with client_ae().associate(
        "127.0.0.1", port, ae_title="TLS_SCP", tls=TLS(ca=pki.ca.path)
    ) as a:
        assert a.send_c_echo().Status == 0x0000
        assert a.send_c_store(ds).Status == 0x0000
    assert [r.SOPInstanceUID for r in received] == [ds.SOPInstanceUID]
    assert received[0].PixelData == ds.PixelData


def test_pem_bytes_rsa_keys_and_hostname(pki, tls_server):
    """PEM given inline, an RSA server key, and the DNS name the certificate names."""
    port, _ = tls_server(
        TLS(cert=pki.rsa_server.cert.read_bytes(), key=pki.rsa_server.key.read_bytes())
    )
    assert echo(port, TLS(ca=pki.ca.path.read_bytes()), host="localhost") == 0


def test_large_data_set_over_tls(pki, tls_server):
    """Many TLS records per PDU and many PDUs per data set, both ways of fragmenting."""
    port, received = tls_server(TLS(cert=pki.server.cert, key=pki.server.key))
    ds = ct_dataset()
    ds.Rows = ds.Columns = 1024
    ds.PixelData = bytes(range(256)) * (1024 * 1024 * 2 // 256)
    ae = client_ae()
    ae.maximum_pdu_size = 0
    with ae.associate("127.0.0.1", port, ae_title="TLS_SCP", tls=TLS(ca=pki.ca.path)) as a:
        assert a.send_c_store(ds).Status == 0x0000
    assert received[0].PixelData == ds.PixelData


def test_tls_13_only_server(pki, tls_server):
    port, _ = tls_server(TLS(cert=pki.server.cert, key=pki.server.key, minimum_version="1.3"))
    assert echo(port, TLS(ca=pki.ca.path)) == 0
    # A client that stops at TLS 1.2 finds no common version.
    context = ssl.create_default_context(cafile=str(pki.ca.path))
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with pytest.raises(ssl.SSLError):
            context.wrap_socket(raw, server_hostname="127.0.0.1")


def test_tls_below_1_2_is_refused(pki, tls_server, caplog):
    """A TLS 1.0/1.1 client gets no handshake, and the server logs why."""
    port, _ = tls_server(TLS(cert=pki.server.cert, key=pki.server.key))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        # OpenSSL's own policy would keep TLS 1.1 from being offered at all.
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    with caplog.at_level(logging.WARNING, logger="dimse"):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with pytest.raises(ssl.SSLError):
                context.wrap_socket(raw, server_hostname="127.0.0.1")
        refused = wait_for_log(caplog, "refused")
    assert "127.0.0.1:" in refused, refused
    assert "TLS handshake failed" in refused, refused
    assert echo(port, TLS(ca=pki.ca.path)) == 0


def wait_for_log(caplog: pytest.LogCaptureFixture, text: str, count: int = 1) -> str:
    """The first `count` log messages containing `text` (notifications are logged from
    the server's threads, a moment after the peer sees the outcome), joined."""
    deadline = time.monotonic() + 5
    while True:
        found = [r.getMessage() for r in caplog.records if text in r.getMessage()]
        if len(found) >= count or time.monotonic() > deadline:
            assert len(found) >= count, [r.getMessage() for r in caplog.records]
            return "\n".join(found)
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("server_cert", "client", "expected"),
    [
        ("untrusted_server", {}, "(?i)unknown ?issuer"),
        ("wrong_name", {}, "not valid for name"),
        ("expired", {}, "(?i)expired"),
    ],
)
def test_client_refuses_a_bad_server_certificate(pki, tls_server, server_cert, client, expected):
    issued = getattr(pki, server_cert)
    port, _ = tls_server(TLS(cert=issued.cert, key=issued.key))
    with pytest.raises(TLSError, match=expected) as info:
        echo(port, TLS(ca=pki.ca.path, **client))
    assert f"127.0.0.1:{port}" in str(info.value)


def test_hostname_check_can_be_relaxed(pki, tls_server):
    port, _ = tls_server(TLS(cert=pki.wrong_name.cert, key=pki.wrong_name.key))
    assert echo(port, TLS(ca=pki.ca.path, check_hostname=False)) == 0
    assert echo(port, TLS(ca=pki.ca.path, server_hostname="pacs.example.org")) == 0
    # Relaxing the name does not relax the chain.
    port, _ = tls_server(TLS(cert=pki.untrusted_server.cert, key=pki.untrusted_server.key))
    with pytest.raises(TLSError, match=r"(?i)unknown ?issuer"):
        echo(port, TLS(ca=pki.ca.path, check_hostname=False))
    # verify=False trusts anything (encryption only).
    assert echo(port, TLS(verify=False)) == 0


def test_mutual_tls(pki, tls_server, caplog):
    server_tls = TLS(cert=pki.server.cert, key=pki.server.key, ca=pki.ca.path)
    assert server_tls.client_auth == "required"
    port, _ = tls_server(server_tls)
    assert echo(port, TLS(ca=pki.ca.path, cert=pki.client.cert, key=pki.client.key)) == 0
    with caplog.at_level(logging.WARNING, logger="dimse"):
        # No client certificate: in TLS 1.3 the client finishes its side first, so the
        # refusal may arrive as a TLS alert after the handshake: either way the
        # association fails and says TLS.
        with pytest.raises((TLSError, AssociationAborted), match=r"(?i)tls|certificate"):
            echo(port, TLS(ca=pki.ca.path))
        with pytest.raises((TLSError, AssociationAborted), match=r"(?i)tls|certificate"):
            echo(
                port,
                TLS(ca=pki.ca.path, cert=pki.untrusted_client.cert, key=pki.untrusted_client.key),
            )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            refused = [r for r in caplog.records if "refused" in r.getMessage()]
            if len(refused) >= 2:
                break
            time.sleep(0.05)
    assert len(refused) >= 2, [r.getMessage() for r in caplog.records]
    assert all("127.0.0.1:" in r.getMessage() for r in refused)
    assert any("certificate" in r.getMessage().lower() for r in refused)


def test_optional_client_certificate(pki, tls_server):
    port, _ = tls_server(
        TLS(cert=pki.server.cert, key=pki.server.key, ca=pki.ca.path, client_auth="optional")
    )
    assert echo(port, TLS(ca=pki.ca.path)) == 0
    assert echo(port, TLS(ca=pki.ca.path, cert=pki.client.cert, key=pki.client.key)) == 0
    with pytest.raises((TLSError, AssociationAborted), match=r"(?i)tls|certificate"):
        echo(
            port,
            TLS(ca=pki.ca.path, cert=pki.untrusted_client.cert, key=pki.untrusted_client.key),
        )


def test_plain_and_tls_do_not_mix(pki, tls_server, caplog):
    tls_port, _ = tls_server(TLS(cert=pki.server.cert, key=pki.server.key))
    plain_port, _ = tls_server(None)
    with caplog.at_level(logging.WARNING, logger="dimse"):
        # Plain DICOM to a TLS port: the server refuses the handshake and closes.
        assoc = client_ae().associate("127.0.0.1", tls_port, ae_title="TLS_SCP")
        assert not assoc.is_established
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(
            "refused" in r.getMessage() for r in caplog.records
        ):
            time.sleep(0.05)
    assert any("not TLS (plain DICOM" in r.getMessage() for r in caplog.records), [
        r.getMessage() for r in caplog.records
    ]
    # TLS to a plain port: the client's handshake fails (the server answers an A-ABORT).
    with pytest.raises(TLSError):
        echo(plain_port, TLS(ca=pki.ca.path))
    # Both servers still serve.
    assert echo(tls_port, TLS(ca=pki.ca.path)) == 0
    assert echo(plain_port, None) == 0


def test_silent_tls_client_is_dropped_at_artim(pki, tls_server):
    port, _ = tls_server(TLS(cert=pki.server.cert, key=pki.server.key), acse_timeout=1)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        start = time.monotonic()
        assert s.recv(100) == b""
        assert time.monotonic() - start < 5


def test_bad_tls_arguments(pki, tmp_path):
    with pytest.raises(InvalidArgument, match="both cert= and key="):
        TLS(cert=pki.server.cert)
    with pytest.raises(InvalidArgument, match="needs ca="):
        TLS(cert=pki.server.cert, key=pki.server.key, client_auth="required")
    with pytest.raises(InvalidArgument, match="minimum_version"):
        TLS(ca=pki.ca.path, minimum_version="1.1")  # type: ignore[arg-type]
    ae = client_ae()
    ae.add_supported_context(sop.Verification)
    missing = tmp_path / "missing.pem"
    with pytest.raises(InvalidArgument, match=r"missing\.pem"):
        ae.start_server(("127.0.0.1", 0), block=False, tls=TLS(cert=missing, key=pki.server.key))
    with pytest.raises(InvalidArgument, match="the certificate and key"):
        ae.start_server(
            ("127.0.0.1", 0), block=False, tls=TLS(cert=pki.server.cert, key=pki.client.key)
        )
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(InvalidArgument, match="no PEM certificate"):
        ae.start_server(("127.0.0.1", 0), block=False, tls=TLS(cert=garbage, key=pki.server.key))
    with pytest.raises(InvalidArgument, match="no PEM private key"):
        ae.start_server(("127.0.0.1", 0), block=False, tls=TLS(cert=pki.server.cert, key=garbage))
    with pytest.raises(InvalidArgument, match="bytes are taken as PEM"):
        TLS(ca=b"\x30\x82")._client_config()
    with pytest.raises(InvalidArgument, match="needs ca="):
        ae.associate("127.0.0.1", 1, tls=TLS())
    with pytest.raises(InvalidArgument, match="SSLContext"):
        ae.associate("127.0.0.1", 1, tls=ssl.create_default_context())  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="needs cert= and key="):
        ae.start_server(("127.0.0.1", 0), block=False, tls=TLS(ca=pki.ca.path))


# -- the apps --------------------------------------------------------------------------------


def dimse_app(*args: object, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dimse", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def storescp_tls(pki, tmp_path):
    port = free_port()
    out = tmp_path / "received"
    out.mkdir()
    log = (tmp_path / "storescp.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "dimse", "storescp", str(port), "--bind", "127.0.0.1",
            "-od", str(out), "-ta", "5",
            "--tls-cert", str(pki.server.cert), "--tls-key", str(pki.server.key),
            "--tls-ca", str(pki.ca.path),
        ],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_for_port(port, proc)
        yield port, out
    finally:
        stop(proc)
        log.close()


def test_apps_over_mutual_tls(pki, storescp_tls, tmp_path):
    port, out = storescp_tls
    client = ["--tls-ca", pki.ca.path, "--tls-cert", pki.client.cert, "--tls-key", pki.client.key]
    done = dimse_app("echoscu", "127.0.0.1", port, "-aec", "STORESCP", *client)
    assert done.returncode == 0, done.stderr
    ds = ct_dataset()
    path = tmp_path / "ct.dcm"
    save(ds, path)
    done = dimse_app("storescu", "127.0.0.1", port, path, *client)
    assert done.returncode == 0, done.stderr
    assert [p.name for p in out.iterdir() if not p.name.startswith(".")] != []
    # Without a client certificate: no association, exit 3, the reason on one line.
    done = dimse_app("echoscu", "127.0.0.1", port, "--tls-ca", pki.ca.path)
    assert done.returncode == 3, (done.stdout, done.stderr)
    assert "tls" in done.stderr.lower() or "certificate" in done.stderr.lower(), done.stderr


def test_app_tls_usage_errors(pki):
    done = dimse_app("echoscu", "127.0.0.1", 104, "--tls-cert", pki.client.cert)
    assert done.returncode == 2, done.stderr
    assert "--tls-key" in done.stderr
    done = dimse_app(
        "echoscu", "127.0.0.1", 104, "--tls-cert", pki.client.cert, "--tls-key", pki.client.key
    )
    assert done.returncode == 2, done.stderr
    assert "--tls-ca" in done.stderr
    done = dimse_app("storescp", "0", "--tls-ca", pki.ca.path)
    assert done.returncode == 2, done.stderr
    assert "--tls-cert" in done.stderr
    done = dimse_app(
        "storescp", "0", "--tls-cert", pki.server.cert, "--tls-key", "/nonexistent.key"
    )
    assert done.returncode == 2, done.stderr
    assert "/nonexistent.key" in done.stderr


# -- DCMTK -----------------------------------------------------------------------------------


def dcmtk_tls_args(pki: PKI, issued: object) -> list[str]:
    """DCMTK's +tls KEY CERT, the trusted CA, an unencrypted key (-pw: no prompt)."""
    return ["+tls", str(issued.key), str(issued.cert), "-pw", "+cf", str(pki.ca.path)]  # type: ignore[attr-defined]


def test_dcmtk_echoscu_and_storescu_to_our_tls_scp(pki, tls_server, tmp_path):
    port, received = tls_server(
        TLS(cert=pki.rsa_server.cert, key=pki.rsa_server.key, ca=pki.ca.path)
    )
    args = dcmtk_tls_args(pki, pki.client)
    done = subprocess.run(
        [dcmtk_tool("echoscu"), *args, "-aec", "TLS_SCP", "127.0.0.1", str(port)],
        capture_output=True, text=True, timeout=60, env=dcmtk_env(), stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    ds = ct_dataset()
    path = tmp_path / "ct.dcm"
    save(ds, path)
    done = subprocess.run(
        [dcmtk_tool("storescu"), *args, "-aec", "TLS_SCP", "127.0.0.1", str(port), str(path)],
        capture_output=True, text=True, timeout=60, env=dcmtk_env(), stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert [r.SOPInstanceUID for r in received] == [ds.SOPInstanceUID]
    # DCMTK without a client certificate (anonymous TLS) is refused by mutual TLS.
    done = subprocess.run(
        [dcmtk_tool("echoscu"), "+tla", "+cf", str(pki.ca.path), "-aec", "TLS_SCP",
         "127.0.0.1", str(port)],
        capture_output=True, text=True, timeout=60, env=dcmtk_env(), stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode != 0


def test_our_scu_to_dcmtk_tls_storescp(pki, tmp_path):
    port = free_port()
    out = tmp_path / "dcmtk"
    out.mkdir()
    # -rc (DCMTK's default): our client certificate is required and verified.
    proc = subprocess.Popen(
        [dcmtk_tool("storescp"), *dcmtk_tls_args(pki, pki.rsa_server), "-rc", "-od", str(out),
         str(port)],
        env=dcmtk_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(port, proc)
        ds = ct_dataset()
        tls = TLS(ca=pki.ca.path, cert=pki.client.cert, key=pki.client.key)
        with client_ae().associate("127.0.0.1", port, ae_title="STORESCP", tls=tls) as assoc:
            assert assoc.send_c_echo().Status == 0x0000
            assert assoc.send_c_store(ds).Status == 0x0000
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not list(out.iterdir()):
            time.sleep(0.05)
        stored = list(out.iterdir())
        assert len(stored) == 1
        assert dcmread(stored[0]).SOPInstanceUID == ds.SOPInstanceUID
        # Without our certificate DCMTK refuses us.
        with pytest.raises((TLSError, AssociationAborted)):
            echo(port, TLS(ca=pki.ca.path), host="127.0.0.1")
    finally:
        stop(proc)


# -- pynetdicom over Python's ssl ------------------------------------------------------------


def test_pynetdicom_over_ssl_to_our_scp(pki, tls_server):
    from pynetdicom import AE as PynetAE

    port, _ = tls_server(TLS(cert=pki.server.cert, key=pki.server.key, ca=pki.ca.path))
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(pki.ca.path))
    context.load_cert_chain(str(pki.client.cert), str(pki.client.key))
    ae = PynetAE("PYNET")
    ae.acse_timeout = 5
    ae.add_requested_context(sop.Verification)
    assoc = ae.associate("127.0.0.1", port, ae_title="TLS_SCP", tls_args=(context, "127.0.0.1"))
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0x0000
    assoc.release()


def test_our_scu_to_pynetdicom_over_ssl(pki):
    from pynetdicom import AE as PynetAE

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca.path))
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_cert_chain(str(pki.server.cert), str(pki.server.key))
    ae = PynetAE("PYNETSCP")
    ae.add_supported_context(sop.Verification)
    server = ae.start_server(("127.0.0.1", 0), block=False, ssl_context=context)
    try:
        port = server.server_address[1]
        tls = TLS(ca=pki.ca.path, cert=pki.client.cert, key=pki.client.key)
        results: list[int] = []
        thread = threading.Thread(target=lambda: results.append(echo(port, tls)))
        thread.start()
        thread.join(30)
        assert results == [0]
    finally:
        server.shutdown()


def test_ssl_style_descriptions(pki, tls_server):
    """tls= also takes a mapping in the ssl module's words (what an SSLContext is built
    from: certfile, keyfile, cafile, verify_mode, ...)."""
    port, _ = tls_server(
        TLS.from_ssl_args(
            {
                "certfile": str(pki.server.cert),
                "keyfile": str(pki.server.key),
                "cafile": str(pki.ca.path),
                "verify_mode": ssl.CERT_REQUIRED,
            },
            server=True,
        )
    )
    mutual = {
        "cafile": pki.ca.path,
        "certfile": pki.client.cert,
        "keyfile": pki.client.key,
        "minimum_version": ssl.TLSVersion.TLSv1_3,
    }
    with client_ae().associate("127.0.0.1", port, ae_title="TLS_SCP", tls=mutual) as assoc:
        assert assoc.send_c_echo().Status == 0
    # The server required a client certificate: without one, no association.
    with pytest.raises((TLSError, AssociationAborted)):
        echo(port, {"cafile": pki.ca.path})  # type: ignore[arg-type]
    # CERT_NONE on a client: no check of the server (its CA is unknown here).
    port, _ = tls_server(
        {"certfile": pki.untrusted_server.cert, "keyfile": pki.untrusted_server.key}
    )  # type: ignore[arg-type]
    assert echo(port, {"verify_mode": ssl.CERT_NONE}) == 0  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="unknown keys"):
        TLS.from_ssl_args({"ciphers": "ALL"}, server=False)
    with pytest.raises(InvalidArgument, match="TLSv1_2 or TLSv1_3"):
        TLS.from_ssl_args({"minimum_version": ssl.TLSVersion.TLSv1_1}, server=False)


def test_qrscp_over_tls_moves_to_a_tls_destination(pki, storescp_tls, tmp_path):
    """The whole archive over TLS: store into `dimse qrscp`, C-MOVE from it to a TLS
    destination of its configuration (mutual TLS both ways: qrscp presents its node
    certificate to the destination)."""
    dest_port, dest_out = storescp_tls
    config = tmp_path / "qrscp.toml"
    config.write_text(
        f'[destinations]\nDEST = {{ host = "127.0.0.1", port = {dest_port}, tls = true }}\n'
    )
    port = free_port()
    log = (tmp_path / "qrscp.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "dimse", "qrscp", "--port", str(port), "--bind", "127.0.0.1",
            "--data-dir", str(tmp_path / "archive"), "--config", str(config), "-ta", "5",
            "--tls-cert", str(pki.node.cert), "--tls-key", str(pki.node.key),
            "--tls-ca", str(pki.ca.path),
        ],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_for_port(port, proc)
        client = [
            "--tls-ca",
            pki.ca.path,
            "--tls-cert",
            pki.client.cert,
            "--tls-key",
            pki.client.key,
        ]
        ds = ct_dataset()
        path = tmp_path / "ct.dcm"
        save(ds, path)
        done = dimse_app("storescu", "127.0.0.1", port, "-aec", "QRSCP", path, *client)
        assert done.returncode == 0, done.stderr
        done = dimse_app(
            "movescu", "127.0.0.1", port, "-aec", "QRSCP", "-aem", "DEST",
            "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={ds.StudyInstanceUID}",
            *client,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        moved = [p for p in dest_out.iterdir() if not p.name.startswith(".")]
        assert [dcmread(p).SOPInstanceUID for p in moved] == [ds.SOPInstanceUID]
    finally:
        stop(proc)
        log.close()
    # A TLS destination without --tls-ca is a usage error, said at start-up.
    done = dimse_app("qrscp", "--port", "0", "--data-dir", tmp_path / "a2", "--config", config)
    assert done.returncode == 2, done.stderr
    assert "DEST use TLS: give --tls-ca" in done.stderr


def test_native_forwarding_over_tls(pki, tls_server):
    """A forwarding server (plain toward its clients) passes instances on over TLS; a
    destination it cannot trust gets nothing, and the client a failure with the reason."""
    from dimse.forward import Forward

    dest_port, received = tls_server(TLS(cert=pki.server.cert, key=pki.server.key))
    servers = []
    try:
        for ca in (pki.ca.path, pki.other_ca.path):
            router = AE("ROUTER")
            router.add_supported_context(sop.CTImageStorage, ExplicitVRLittleEndian)
            forward = Forward("127.0.0.1", dest_port, "TLS_SCP", tls=TLS(ca=ca))
            server = router.start_server(("127.0.0.1", 0), block=False, forward=forward)
            assert server is not None
            servers.append(server)
        trusted, untrusted = (s.server_address[1] for s in servers)
        ds = ct_dataset()
        with client_ae().associate("127.0.0.1", trusted, ae_title="ROUTER") as assoc:
            assert assoc.send_c_store(ds).Status == 0x0000
        assert [r.SOPInstanceUID for r in received] == [ds.SOPInstanceUID]
        with client_ae().associate("127.0.0.1", untrusted, ae_title="ROUTER") as assoc:
            status = assoc.send_c_store(ct_dataset())
        assert status.Status == 0xA700
        assert "TLS" in str(status.ErrorComment), status.ErrorComment
        assert len(received) == 1
    finally:
        for server in servers:
            server.shutdown()


def test_streamed_data_set_to_native_storage_over_tls(pki, tmp_path):
    """A data set above the stream threshold goes to its file part by part as it
    arrives through TLS: byte for byte what was sent."""
    from dimse.storage import FileStorage

    scp = AE("TLS_SCP")
    scp.stream_threshold = 1 << 20
    scp.add_supported_context(sop.CTImageStorage, ExplicitVRLittleEndian)
    out = tmp_path / "out"
    server = scp.start_server(
        ("127.0.0.1", 0),
        block=False,
        storage=FileStorage(out),
        tls=TLS(cert=pki.server.cert, key=pki.server.key),
    )
    assert server is not None
    try:
        ds = ct_dataset()
        ds.Rows = ds.Columns = 2048
        ds.PixelData = bytes(range(251)) * (2048 * 2048 * 2 // 251 + 1)
        ds.PixelData = ds.PixelData[: 2048 * 2048 * 2]
        port = server.server_address[1]
        tls = TLS(ca=pki.ca.path)
        with client_ae().associate("127.0.0.1", port, ae_title="TLS_SCP", tls=tls) as assoc:
            assert assoc.send_c_store(ds).Status == 0x0000
        stored = dcmread(out / f"{ds.SOPInstanceUID}.dcm")
        assert stored.PixelData == ds.PixelData
    finally:
        server.shutdown()
