"""The deployment files as an operator installs them: nginx accepts the site, systemd the units."""

from __future__ import annotations

import datetime
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.factories import ROOT

pytestmark = pytest.mark.slow  # starts real processes

DEPLOY = ROOT / "deploy"


def self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pufa.example.gov.cn")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "fullchain.pem", folder / "privkey.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_nginx_accepts_the_site(tmp_path):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.skip("nginx is not installed here")
    cert, key = self_signed(tmp_path)
    site = (DEPLOY / "nginx.conf.sample").read_text(encoding="utf-8")
    site = site.replace("/etc/ssl/pufa/fullchain.pem", str(cert))
    site = site.replace("/etc/ssl/pufa/privkey.pem", str(key))
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\naccess_log off;\nclient_body_temp_path {tmp_path};\n"
        f"proxy_temp_path {tmp_path};\n{site}\n}}\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [nginx, "-e", str(tmp_path / "error.log"), "-p", str(tmp_path), "-t", "-c", str(conf)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "test is successful" in done.stderr


@pytest.mark.parametrize("unit", ["pufa-web.service", "pufa-scheduler.service"])
def test_systemd_accepts_the_units(tmp_path, unit):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here")
    bin_dir = tmp_path / "venv-bin"  # stands in for /srv/pufa/.venv/bin
    bin_dir.mkdir()
    for name in ("flask", "gunicorn", "python"):
        (bin_dir / name).symlink_to(shutil.which("true") or "/bin/true")
    text = (DEPLOY / "systemd" / unit).read_text(encoding="utf-8")
    (tmp_path / unit).write_text(text.replace("/srv/pufa/.venv/bin", str(bin_dir)))
    done = subprocess.run([analyze, "verify", str(tmp_path / unit)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr
