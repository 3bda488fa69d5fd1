"""Issue 18, points 6 and 7: the per-account sign-in pause does not depend on the Host
header, and forwarded headers are believed only from configured proxies."""

from pathlib import Path

import pytest

from audit.events import Action
from audit.services import ip_blind_index
from tests.accounts.conftest import PASSWORD, new_client
from tests.database import events
from tests.supportgroups.test_settings import run, settings_values

pytestmark = pytest.mark.django_db


def attempt(client, handle, password, **request):
    """The login form, posted with ``request`` as the request's own META (address, Host)."""
    return client.post("/accounts/login/", {"login": handle, "password": password}, **request)


REPO_ROOT = Path(__file__).resolve().parent.parent.parent
PAUSED = "Too many attempts to sign in"


# --- 6: the pause per account ---------------------------------------------------------------


@pytest.mark.parametrize("host", ["LOCALHOST:8501", "localhost:8501", "Localhost", "127.0.0.1:80"])
def test_the_pause_per_account_holds_whatever_the_host_header(owner, host):
    # Five wrong passwords, each from another address (so the per-address limit is not
    # what stops them), all with the ordinary Host.
    for n in range(5):
        wrong = attempt(
            new_client(), owner.username, "not the password", REMOTE_ADDR=f"192.0.2.{n}"
        )
        assert PAUSED not in wrong.content.decode()

    # The right password, through another spelling of the same host: still paused.
    response = attempt(
        new_client(), owner.username, PASSWORD, REMOTE_ADDR="192.0.2.99", HTTP_HOST=host
    )

    assert response.status_code == 200
    assert PAUSED in response.content.decode()
    assert len(events(Action.LOGIN_THROTTLED)) == 1


def test_the_pause_counts_the_handle_in_any_case(owner):
    for n in range(5):
        attempt(
            new_client(), owner.username.upper(), "not the password", REMOTE_ADDR=f"192.0.2.{n}"
        )

    response = attempt(new_client(), owner.username, PASSWORD, REMOTE_ADDR="192.0.2.99")

    assert PAUSED in response.content.decode()


# --- 7: forwarded headers --------------------------------------------------------------------


def failed_login_ip_index(**request):
    attempt(new_client(), "no-such-handle", "wrong", **request)
    return events(Action.LOGIN_FAILED)[-1].ip_index


def test_a_direct_client_cannot_choose_its_address(db, settings):
    settings.TRUSTED_PROXIES = []

    recorded = failed_login_ip_index(REMOTE_ADDR="192.0.2.7", HTTP_X_FORWARDED_FOR="203.0.113.1")

    assert recorded == ip_blind_index("192.0.2.7")


def test_a_direct_client_gets_no_fresh_budget_from_new_forwarded_addresses(owner, settings):
    settings.TRUSTED_PROXIES = []
    statuses = []
    for n in range(11):
        response = attempt(
            new_client(),
            f"someone-{n}",
            "wrong",
            REMOTE_ADDR="192.0.2.7",
            HTTP_X_FORWARDED_FOR=f"203.0.113.{n}",
        )
        statuses.append(PAUSED in response.content.decode())

    # "10/m/ip" for failed sign-ins: the eleventh from the same peer is paused.
    assert statuses == [False] * 10 + [True]


def test_a_trusted_proxy_names_the_client(db, settings):
    import ipaddress

    settings.TRUSTED_PROXIES = [ipaddress.ip_network("10.0.0.0/24")]

    # The client wrote "1.2.3.4" itself; our proxy appended the address it saw.
    recorded = failed_login_ip_index(
        REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.9"
    )

    assert recorded == ip_blind_index("203.0.113.9")


def test_only_a_trusted_proxy_makes_a_request_https(db, settings, client):
    import ipaddress

    settings.TRUSTED_PROXIES = [ipaddress.ip_network("10.0.0.0/24")]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True

    from_proxy = client.get("/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_PROTO="https")
    from_anyone = client.get("/", REMOTE_ADDR="192.0.2.7", HTTP_X_FORWARDED_PROTO="https")

    assert from_proxy.status_code == 200
    assert from_anyone.status_code == 301  # still plain HTTP: sent to https


def test_the_production_command_does_not_let_daphne_believe_any_peer():
    # Daphne's --proxy-headers takes X-Forwarded-For from whoever connects.
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    command = next(line for line in dockerfile.splitlines() if line.startswith("CMD"))
    assert "supportgroups.serve" in command and "--proxy-headers" not in command


def test_trusted_proxies_are_read_strictly():
    values = settings_values("TRUSTED_PROXIES", TRUSTED_PROXIES="10.0.0.5, fd00::/8")
    assert values["TRUSTED_PROXIES"] == ["10.0.0.5/32", "fd00::/8"]

    result = run(["-c", "import supportgroups.settings"], TRUSTED_PROXIES="10.0.0.0/33")
    assert result.returncode != 0
    assert "TRUSTED_PROXIES must list IP addresses or networks" in result.output

    no_proxy = run(["-c", "import supportgroups.settings"], TRUST_X_FORWARDED_PROTO="true")
    assert no_proxy.returncode != 0
    assert "TRUST_X_FORWARDED_PROTO needs TRUSTED_PROXIES" in no_proxy.output


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("10.0.0.5", "203.0.113.9", "203.0.113.9"),
        ("10.0.0.5", "6.6.6.6, 203.0.113.9, 10.0.0.7", "203.0.113.9"),  # two proxies of ours
        ("10.0.0.5", "not-an-address", "10.0.0.5"),
        ("10.0.0.5", "", "10.0.0.5"),
        ("192.0.2.7", "203.0.113.9", "192.0.2.7"),  # not a proxy of ours
        ("10.0.0.5", "[2001:db8::1]:4711", "2001:db8::1"),
    ],
)
def test_the_client_is_the_nearest_address_no_proxy_of_ours_wrote(
    settings, peer, forwarded, client
):
    import ipaddress

    from supportgroups.hardening import client_address

    settings.TRUSTED_PROXIES = [ipaddress.ip_network("10.0.0.0/24")]

    assert client_address(peer, forwarded) == client
