"""cloud-init's `phone_home`, once, for every guest osbench plays: the simulated
guests (`osbench.sim.guest`) and minicloud's (`osbench.minicloud.guests`).

It reads the `phone_home` section of `#cloud-config` user data into a
`PhoneHome`, builds the form the guest posts, and decides, try by try, whether
and when to try again (`RetryPolicy`); `post_form` runs that loop over an
aiohttp session the caller owns, on the caller's clock.

What cloud-init does, read in canonical/cloud-init at 04eacd06ee60 (26.2-20,
`git describe`):

cloudinit/config/cc_phone_home.py, `handle`:
- no `phone_home` key: skip (DEBUG). No `url` key: skip with a WARNING.
- `post` defaults to `all`, which means POST_LIST_ALL (POST_ALL here); a list
  is taken key by key: a key it has is posted as `str(value)`, one it has not
  (an unknown name, or a host key file it could not read) as `N/A`, with a
  WARNING.
- `tries = int(ph_cfg.get("tries"))`; on ValueError/TypeError (not a number,
  and also when absent: `int(None)`) it logs and uses 10. No bounds.
- it has `instance_id` (the datasource's: Nova's UUID), `hostname` and `fqdn`
  (`cloud.get_hostname()` and `get_hostname(fqdn=True)`), and
  `pub_key_{rsa,ecdsa,ed25519}` (the contents of /etc/ssh/ssh_host_*_key.pub).
- the url is rendered with `templater.render_string(url, {"INSTANCE_ID": id})`:
  the basic renderer replaces `$NAME` / `${NAME}` (NAME of [A-Za-z0-9_.]) and
  raises on any other NAME, so the module fails and nothing is posted.
- `url_helper.read_file_or_url(url, data=form, retries=tries - 1,
  sec_between=3)`, no timeout, no exception_cb; any exception is logged
  ("Failed to post phone home data to ... in N tries") and boot goes on.

cloudinit/url_helper.py, `readurl` and `_handle_error`:
- `manual_tries = max(retries + 1, 1)` when retries is non-zero, else 1: so
  `tries` tries, and at least one (tries 0 or negative: one).
- POST (form-encoded, as requests does with a dict) when there is data,
  `User-Agent: Cloud-Init/<version>`, redirects followed.
- success is a reply `raise_for_status` accepts: anything but 400-599.
- an HTTPError (400-599) or any other requests error (connection refused,
  reset, timeout) is retried while `i + 1 < manual_tries`, `sec_between`
  (3 s) apart; an SSLError is raised at once, never retried.
- HTTP 503 (since 25.1, commit 1a5155320 "Retry on 503 error", #5938) is
  retried after its Retry-After (seconds, or an HTTP date; 1 s when absent,
  unparseable or in the past) *even past the tries*: "If our response tells us
  to wait, then wait even if we're past the max tries". The try still counts
  (`i` counts every try), so a non-503 failure after a run of 503s ends it if
  `tries` are used up. A Retry-After of 0 is falsy: that 503 is an ordinary
  counted retry, 3 s later.
- exception_cb (phone_home passes none): returning True makes any error an
  ordinary counted retry, even a 503; returning False raises, except on 503.

Where the user data comes from (cloudinit/handlers/cloud_config.py,
handlers/__init__.py `type_from_starts_with`, util.load_yaml): a part is
cloud-config when it starts, after leading whitespace and ignoring case, with
`#cloud-config`; YAML that does not load, or whose root is not a mapping, is
logged (WARNING "Failed loading yaml blob" / "Failed at merging in cloud config
part") and ignored, so no module sees it: phone_home does not run.

fqdn: on OpenStack cloud-init's `local-hostname` is the metadata `hostname`,
which Nova serves as `<instance hostname>.<dhcp_domain>` (nova/api/metadata/
base.py `_get_hostname`; dhcp_domain defaults to `novalocal`);
`DataSource.get_hostname` (cloudinit/sources/__init__.py) takes the first
label as hostname and, with fqdn=True, the whole name unless the domain is
`localdomain`.

Decisions here:
- ONE behaviour for malformed input, cloud-init's outcome: no phone home. The
  parser never raises; it returns `Skipped` with the reason and whether
  cloud-init would have warned (`malformed`) rather than just not been asked.
  That covers what cloud-init would crash on inside the module (a url that is
  not a string or names other variables, `post` neither `all` nor a list,
  `tries: .inf`), as in cloud-init the module then posts nothing.
- Deviations, each for input osbench never sends: an empty url is skipped
  (cloud-init would fail `tries` times); a `post` string other than `all`
  (cloud-init iterates its characters) or a list holding lists or mappings is
  skipped; an empty `post` list posts an empty form (cloud-init would GET); a
  negative or non-finite Retry-After waits 1 s (cloud-init would crash or hang);
  MIME multipart, gzip and `#include` user data are not read.
"""

from __future__ import annotations

import email.utils
import math
import re
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlencode

if TYPE_CHECKING:
    import aiohttp

#: cc_phone_home.POST_LIST_ALL: what `post: all` posts, in that order.
POST_ALL = ("pub_key_rsa", "pub_key_ecdsa", "pub_key_ed25519", "instance_id", "hostname",
            "fqdn")
DEFAULT_TRIES = 10
#: cc_phone_home's `sec_between` for readurl.
SEC_BETWEEN = 3.0
#: What a 503 without a usable Retry-After waits (url_helper._get_retry_after).
RETRY_AFTER_DEFAULT_S = 1.0
#: What cloud-init posts for a requested field it does not have.
NOT_AVAILABLE = "N/A"
#: Nova's default [api]dhcp_domain.
DHCP_DOMAIN = "novalocal"
CLOUD_CONFIG = "#cloud-config"
#: templater.basic_render's variables: `${NAME}` or `$NAME`.
_TEMPLATE_VARIABLE = re.compile(r"\$\{([A-Za-z0-9_.]+)\}|\$([A-Za-z0-9_.]+)")


@dataclass(frozen=True)
class Skipped:
    """Why a guest's cloud-init does not phone home."""

    reason: str
    #: True where cloud-init says so at WARNING or fails the module (the user
    #: data asked for something it cannot do); False where it was not asked.
    malformed: bool = False


@dataclass(frozen=True)
class PhoneHome:
    """One instance's `phone_home` settings, as cc_phone_home reads them."""

    url: str
    post: tuple[str, ...] = POST_ALL
    #: As configured (after `int()`); `attempts` is what readurl makes of it.
    tries: int = DEFAULT_TRIES

    @property
    def attempts(self) -> int:
        return self.retry_policy().attempts

    def url_for(self, instance_id: str) -> str:
        """The URL with `$INSTANCE_ID` / `${INSTANCE_ID}` replaced."""
        return _TEMPLATE_VARIABLE.sub(lambda _: instance_id, self.url)

    def form(self, values: Mapping[str, str | None]) -> dict[str, str]:
        """The posted fields: each requested one, `N/A` where there is no value."""
        form: dict[str, str] = {}
        for name in self.post:
            value = values.get(name)
            form[name] = NOT_AVAILABLE if value is None else str(value)
        return form

    def retry_policy(self, sec_between: float = SEC_BETWEEN) -> RetryPolicy:
        return RetryPolicy(tries=self.tries, sec_between=sec_between)


def parse_user_data(user_data: str | bytes | None) -> PhoneHome | Skipped:
    """The phone_home config in (decoded) user data, or why there is none."""
    if not user_data:
        return Skipped("no user data")
    if isinstance(user_data, bytes):
        try:
            user_data = user_data.decode("utf-8")
        except UnicodeDecodeError:
            return Skipped("user data is not UTF-8 text, so not a cloud-config")
    if not user_data.lstrip().lower().startswith(CLOUD_CONFIG):
        return Skipped("user data is not a #cloud-config")
    import yaml  # only here: the module's imports stay the standard library's

    try:
        doc = yaml.safe_load(user_data)
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())
        return Skipped(f"cloud-config is not valid YAML: {detail}", malformed=True)
    if not isinstance(doc, dict):
        return Skipped(f"cloud-config is a {type(doc).__name__}, not a mapping",
                       malformed=True)
    if "phone_home" not in doc:
        return Skipped("no phone_home in the cloud-config")
    return parse_phone_home(doc["phone_home"])


def parse_phone_home(section: object) -> PhoneHome | Skipped:
    """The `phone_home` section of a loaded cloud-config."""
    if not isinstance(section, dict):
        return Skipped(f"phone_home is a {type(section).__name__}, not a mapping",
                       malformed=True)
    if "url" not in section:
        return Skipped("phone_home has no url", malformed=True)
    url = section["url"]
    if not isinstance(url, str) or not url.strip():
        return Skipped(f"phone_home.url must be a non-empty string, got {url!r}",
                       malformed=True)
    names = {a or b for a, b in _TEMPLATE_VARIABLE.findall(url)} - {"INSTANCE_ID"}
    if names:
        return Skipped(f"phone_home.url names variables cloud-init cannot fill: "
                       f"{sorted(names)}", malformed=True)
    post = section.get("post", "all")
    fields: tuple[str, ...]
    if post == "all":
        fields = POST_ALL
    elif isinstance(post, list) and not any(isinstance(p, list | dict) for p in post):
        fields = tuple(dict.fromkeys(str(p) for p in post))
    else:
        return Skipped(f"phone_home.post must be 'all' or a list of names, got {post!r}",
                       malformed=True)
    try:
        tries = int(section.get("tries"))  # type: ignore[arg-type]  # absent: None, so 10
    except (TypeError, ValueError):
        tries = DEFAULT_TRIES
    except OverflowError:
        return Skipped(f"phone_home.tries is not a number of tries: {section['tries']!r}",
                       malformed=True)
    return PhoneHome(url=url, post=fields, tries=tries)


def instance_values(instance_id: str, hostname: str, *, dhcp_domain: str = DHCP_DOMAIN,
                    host_keys: Mapping[str, str] | None = None) -> dict[str, str]:
    """What cloud-init on an OpenStack guest has to post: `instance_id`, `hostname`
    and `fqdn` from Nova's metadata `hostname`, and `pub_key_*` from `host_keys`."""
    metadata_hostname = f"{hostname}.{dhcp_domain}" if dhcp_domain else hostname
    short, _, domain = metadata_hostname.partition(".")
    fqdn = metadata_hostname if domain and domain != "localdomain" else short
    return {"instance_id": instance_id, "hostname": short, "fqdn": fqdn,
            **(host_keys or {})}


def user_agent(version: str) -> str:
    return f"Cloud-Init/{version}"


def retry_after_s(value: str | None, *, now: float | None = None) -> float:
    """Seconds a 503's Retry-After asks for (url_helper._get_retry_after): a number,
    or an HTTP date less `now` (epoch seconds); 1 s when absent, unusable or past."""
    if value is None:
        return RETRY_AFTER_DEFAULT_S
    try:
        wait = float(value)
    except ValueError:
        parsed = email.utils.parsedate_tz(value)
        if parsed is None:
            return RETRY_AFTER_DEFAULT_S
        wait = email.utils.mktime_tz(parsed) - (time.time() if now is None else now)
    return wait if math.isfinite(wait) and wait >= 0 else RETRY_AFTER_DEFAULT_S


@dataclass(frozen=True)
class Outcome:
    """One try: the reply's status (None when there was none) or the error."""

    status: int | None = None
    retry_after: str | None = None
    error: str = ""
    #: A TLS failure: readurl raises it at once, no retry.
    tls: bool = False

    @property
    def ok(self) -> bool:
        return self.status is not None and not 400 <= self.status < 600

    def describe(self) -> str:
        return f"HTTP {self.status}" if self.status is not None else self.error


@dataclass(frozen=True)
class RetryPolicy:
    """readurl's retries as phone_home calls it."""

    tries: int = DEFAULT_TRIES
    sec_between: float = SEC_BETWEEN

    @property
    def attempts(self) -> int:
        return max(self.tries, 1)

    def wait_after(self, attempt: int, outcome: Outcome, *,
                   now: float | None = None) -> float | None:
        """Seconds to wait before try `attempt + 1` after try `attempt` (counting from
        1, every try included), or None to stop: on success, on a TLS error, and on a
        failed last try, except that a 503 waits its Retry-After and goes on."""
        if outcome.ok or outcome.tls:
            return None
        wait: float | None = None
        if outcome.status == 503:
            wait = retry_after_s(outcome.retry_after, now=now) or None
        if wait is None and attempt < self.attempts:
            wait = self.sec_between
        # readurl sleeps only when sec_between > 0.
        return None if wait is None else (wait if self.sec_between > 0 else 0.0)


@dataclass(frozen=True)
class Result:
    url: str
    ok: bool
    #: Tries made, every one counted.
    attempts: int
    #: The HTTP status that ended it (a success's, or the last failure's).
    status: int | None
    #: The last failure, "" on success.
    error: str = ""


async def send_form(session: aiohttp.ClientSession, url: str, body: bytes,
                    headers: Mapping[str, str], *, timeout_s: float | None) -> Outcome:
    """One POST; its status, or the error that stood for one."""
    import aiohttp

    timeout = session.timeout if timeout_s is None else aiohttp.ClientTimeout(total=timeout_s)
    try:
        async with session.post(url, data=body, headers=headers, timeout=timeout) as reply:
            await reply.read()
            return Outcome(status=reply.status, retry_after=reply.headers.get("Retry-After"))
    except (aiohttp.ClientSSLError, aiohttp.ServerFingerprintMismatch, ssl.SSLError) as exc:
        return Outcome(error=f"{type(exc).__name__}: {exc}", tls=True)
    except (aiohttp.ClientError, OSError) as exc:  # OSError: TimeoutError too
        return Outcome(error=f"{type(exc).__name__}: {exc}")


async def post_form(session: aiohttp.ClientSession, url: str, form: Mapping[str, str], *,
                    policy: RetryPolicy, version: str,
                    sleep: Callable[[float], Awaitable[None]],
                    now: Callable[[], float] = time.time, timeout_s: float | None = None,
                    on_attempt: Callable[[Outcome], None] | None = None) -> Result:
    """phone_home's POST of `form` to `url` (form-encoded, cloud-init's user agent),
    tried as `policy` says, waiting with `sleep` (the caller's clock)."""
    body = urlencode(form).encode("ascii")
    headers = {"User-Agent": user_agent(version),
               "Content-Type": "application/x-www-form-urlencoded"}
    attempt = 0
    while True:
        attempt += 1
        outcome = await send_form(session, url, body, headers, timeout_s=timeout_s)
        if on_attempt is not None:
            on_attempt(outcome)
        wait = policy.wait_after(attempt, outcome, now=now())
        if wait is None:
            return Result(url=url, ok=outcome.ok, attempts=attempt, status=outcome.status,
                          error="" if outcome.ok else outcome.describe())
        await sleep(wait)
