"""Deterministic row source for the sample database: one `random.Random`, so one seed gives one database.

Small tables come out as tuples for psycopg's `Copy.write_row`. The two big tables (scan_findings,
audit_logs) come out as ready-made COPY text lines, which is several times faster than adapting every
value; their vocabulary holds no tab, newline or backslash, so no escaping is needed.
"""

from __future__ import annotations

import base64
import json
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from openwatch_backup.sample.credentials import SampleVault
from openwatch_backup.sample.vocab import PATHS, PROFILES, WORDS, Rule, build_profiles, build_rules

Row = tuple[object, ...]

_FIRST = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "niaj",
          "olivia", "peggy", "rupert", "sybil")
_LAST = ("nguyen", "smith", "garcia", "muller", "rossi", "kowalski", "tanaka", "okafor", "silva", "jensen",
         "novak", "haddad", "ivanova")
_ROLES = ("security_admin", "security_analyst", "compliance_officer", "auditor", "guest")
_OSES = (
    ("Red Hat Enterprise Linux 9.4", "rhel", "9.4"),
    ("Red Hat Enterprise Linux 8.10", "rhel", "8.10"),
    ("Rocky Linux 9.3", "rhel", "9.3"),
    ("Oracle Linux Server 8.9", "rhel", "8.9"),
    ("Ubuntu 22.04.4 LTS", "ubuntu", "22.04"),
    ("Debian GNU/Linux 12", "debian", "12"),
    ("SUSE Linux Enterprise Server 15 SP5", "suse", "15.5"),
)
_HOST_ROLES = ("web", "db", "app", "api", "cache", "mq", "bastion", "log", "mon", "ci", "k8s-node", "ldap", "vpn")
_ENVS = {"production": "prod", "staging": "stg", "development": "dev", "qa": "qa"}  # name: hostname part
_STATUSES = ("pass", "fail", "notapplicable", "error", "notchecked", "informational")
_STATUS_WEIGHTS = (60, 30, 5, 1, 2, 2)
_SCAN_ERRORS = (
    "SSH connection to {ip}:22 timed out after 30 seconds",
    "Authentication failed for user svc_openwatch on {ip} (publickey,password)",
    "oscap exited with status 1: OpenSCAP Error: Unable to open file ssg-rhel9-ds.xml",
    "Host {ip} refused connection: sudo requires a tty",
)
_REMEDIATIONS = ("pending", "running", "completed", "failed", "rolled_back")  # the enum's values
_ACTIONS = (  # action, resource type, API path
    ("LOGIN_SUCCESS", "auth", "/api/auth/login"), ("LOGIN_FAILED", "auth", "/api/auth/login"),
    ("SCAN_STARTED", "scan", "/api/scans"), ("SCAN_COMPLETED", "scan", "/api/scans"),
    ("HOST_CREATED", "host", "/api/hosts"), ("HOST_UPDATED", "host", "/api/hosts"),
    ("CREDENTIAL_UPDATED", "credential", "/api/system/credentials"), ("REPORT_EXPORTED", "report", "/api/reports"),
    ("SETTINGS_CHANGED", "system", "/api/system/settings"), ("USER_CREATED", "user", "/api/users"),
)
_AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "python-requests/2.32.3",
    "openwatch-cli/2.4.1",
)


@dataclass(frozen=True, slots=True)
class Host:
    id: uuid.UUID
    hostname: str
    ip: str
    profile: str


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode().rstrip("=")


class SampleData:
    """Rows for every table. Call order matters: each call consumes the shared generator."""

    def __init__(self, rng_seed: int) -> None:
        self.rng = random.Random(rng_seed)  # noqa: S311 (sample data must be reproducible)
        self.vault = SampleVault(rng_seed)  # credentials under the sample master key; its own generator
        self.rules = build_rules(self.rng)
        self.profiles: dict[str, list[Rule]] = build_profiles(self.rules, self.rng)
        self.hosts: list[Host] = []
        self.user_ids: list[int] = []
        self.clock = datetime(2026, 1, 5, 6, 0, 0)  # scans and audit entries move forward from here

    def _uuid(self) -> uuid.UUID:
        # uuid4() would read the OS entropy pool and break determinism.
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def _time(self, days_back: float) -> datetime:
        return self.clock - timedelta(seconds=self.rng.uniform(0, days_back * 86400))

    def users(self, n: int) -> list[Row]:
        rows: list[Row] = []
        seen: set[str] = set()
        while len(rows) < n:
            name = f"{self.rng.choice(_FIRST)[0]}{self.rng.choice(_LAST)}" if rows else "admin"
            username = f"{name}{len(rows)}" if name in seen else name
            seen.add(username)
            role = "super_admin" if not rows else self.rng.choice(_ROLES)
            mfa = self.rng.random() < 0.4
            password = f"$argon2id$v=19$m=65536,t=3,p=4${_b64(self.rng.randbytes(16))}${_b64(self.rng.randbytes(32))}"
            codes = json.dumps([self.rng.randbytes(16).hex() for _ in range(10)]) if mfa else None
            created = self._time(400)
            rows.append((
                username, f"{username}@corp.example.com", password, role, self.rng.random() < 0.9, created,
                created + timedelta(days=self.rng.uniform(0, 30)) if self.rng.random() < 0.8 else None,
                mfa, self.vault.mfa_secret() if mfa else None, codes,
            ))
        return rows

    def host_rows(self, n: int) -> list[Row]:
        rows: list[Row] = []
        for i in range(n):
            os_name, family, version = self.rng.choice(_OSES)
            env = self.rng.choice(list(_ENVS))
            site = f"dc{self.rng.randint(1, 3)}"
            name = f"{self.rng.choice(_HOST_ROLES)}-{_ENVS[env]}-{i + 1:03d}.{site}.corp.example.com"
            ip = f"10.{self.rng.randint(0, 255)}.{self.rng.randint(0, 255)}.{self.rng.randint(1, 254)}"
            host = Host(self._uuid(), name, ip, self.rng.choice(PROFILES))
            self.hosts.append(host)
            tags = json.dumps(self.rng.sample(["pci", "hipaa", "dmz", "internal", "critical", "linux", "k8s"], 2))
            created = self._time(300)
            status = self.rng.choices(("online", "down", "unknown", "critical", "maintenance", "degraded"),
                                      weights=(80, 4, 5, 3, 4, 4))[0]
            method = self.rng.choice(("ssh_key", "password", "system_default"))
            rows.append((
                host.id, name, ip, name.split(".")[0].upper(), os_name, family, version, status,
                22, "svc_openwatch", method,
                # A host on the system default has no credentials of its own, as in OpenWatch.
                None if method == "system_default" else self.vault.host_credentials("svc_openwatch", method),
                " ".join(self.rng.choices(WORDS, k=12)), env, tags, f"team-{self.rng.choice(_LAST)}",
                self.rng.random() < 0.95, self.rng.choice(self.user_ids), created,
                created + timedelta(days=self.rng.uniform(0, 60)),
            ))
        return rows

    def credentials(self) -> list[Row]:
        def row(name: str, scope: str, target: uuid.UUID | None, default: bool) -> Row:
            method = self.rng.choice(("ssh_key", "password", "both"))
            has_key = method != "password"
            created = self._time(300)
            return (
                self._uuid(), name, " ".join(self.rng.choices(WORDS, k=8)), scope, target, "svc_openwatch",
                method, self.vault.as_text(self.vault.password()) if method != "ssh_key" else None,
                self.vault.as_text(self.vault.ssh_key(self.rng.random() < 0.5)) if has_key else None,
                self.vault.as_text(self.vault.password()) if has_key and self.rng.random() < 0.5 else None,
                default, True, self._uuid(), created, created + timedelta(days=self.rng.uniform(0, 30)),
            )

        rows = [row("System default SSH key", "system", None, True), row("Legacy root", "system", None, False)]
        rows += [row(f"{env} group key", "group", self._uuid(), True) for env in _ENVS]
        rows += [row(f"{h.hostname} key", "host", h.id, True) for h in self.hosts if self.rng.random() < 0.25]
        return rows

    def settings(self) -> list[Row]:
        values = {
            "scan.default_profile": ("string", PROFILES[0]), "scan.max_concurrent": ("integer", "8"),
            "scan.timeout_seconds": ("integer", "3600"), "scan.retry_failed": ("boolean", "true"),
            "auth.session_timeout_minutes": ("integer", "30"), "auth.mfa_required": ("boolean", "true"),
            "auth.lockout_threshold": ("integer", "5"), "smtp.host": ("string", "smtp.corp.example.com"),
            "smtp.password": ("string", _b64(self.rng.randbytes(48))), "alerts.webhook_url": (
                "string", f"https://hooks.example.com/services/{_b64(self.rng.randbytes(24))}"),
            "retention.audit_days": ("integer", "365"), "discovery.subnets": ("json", '["10.0.0.0/8"]'),
            "ui.banner": ("string", "Authorized use only. Activity is monitored."),
        }
        return [
            (key, value, kind, f"Setting {key}", 1, self._time(200), 1, self._time(20), key.endswith("password"))
            for key, (kind, value) in values.items()
        ]

    def security_config(self) -> list[Row]:
        return [
            ("global", "required", "fips_140_2", 14, self._time(30)),
            ("service_accounts", "disabled", "fips_140_3", 24, self._time(30)),
        ]

    def scan_batch(self, findings_wanted: int) -> tuple[list[Row], list[str]]:
        """Scans (rows) and their findings (COPY lines) until at least `findings_wanted` findings exist."""
        scans: list[Row] = []
        lines: list[str] = []
        while len(lines) < findings_wanted:
            host = self.rng.choice(self.hosts)
            rules = self.profiles[host.profile]
            scan_id = self._uuid()
            self.clock += timedelta(minutes=self.rng.uniform(1, 20))
            started = self.clock
            failed = self.rng.random() < 0.04
            statuses = [] if failed else self.rng.choices(_STATUSES, weights=_STATUS_WEIGHTS, k=len(rules))
            done = started + timedelta(seconds=self.rng.uniform(30, 90) + 0.6 * len(statuses))
            stamp = done.isoformat(sep=" ")  # one INSERT per scan upstream, so one now() for all findings
            for rule, status in zip(rules, statuses, strict=False):
                evidence = " ".join(self.rng.choices(WORDS, k=16))
                lines.append(
                    f"{scan_id}\t{rule.rule_id}\t{rule.title}\t{rule.severity}\t{status}\t{rule.description}"
                    f"\\nResult {status} on {host.hostname}: observed value {self.rng.randint(0, 99999)} in "
                    f"{self.rng.choice(PATHS)}; {evidence}\t{rule.framework_section}\t{stamp}\n"
                )
            meta = {
                "scanner": "oscap 1.3.10", "content": "ssg-rhel9-ds.xml", "rules_total": len(statuses),
                "passed": statuses.count("pass"), "failed": statuses.count("fail"),
                "score": round(100 * statuses.count("pass") / max(len(statuses), 1), 2),
                "duration_seconds": round((done - started).total_seconds(), 1), "target": host.ip,
            }
            options = {"profile": host.profile, "timeout": 3600, "remediate": False, "rule_filter": []}
            scans.append((
                scan_id, f"{host.profile.split('content_profile_')[-1]} scan of {host.hostname}", host.id, host.profile,
                "failed" if failed else "completed", self.rng.randint(5, 90) if failed else 100,
                None if failed else f"/openwatch/data/results/{scan_id}.xml",
                self.rng.choice(_SCAN_ERRORS).format(ip=host.ip) if failed else None, json.dumps(options),
                self.rng.choice(self.user_ids), started, done, str(self._uuid()),
                # Every other scan carries a remediation, so even the smallest sample has the enum set.
                self.rng.choice(_REMEDIATIONS) if len(scans) % 2 == 0 else None, json.dumps(meta),
            ))
        return scans, lines

    def audit_lines(self, n: int) -> list[str]:
        lines: list[str] = []
        for _ in range(n):
            action, resource, path = self.rng.choice(_ACTIONS)
            target = self.rng.choice(self.hosts)
            details = json.dumps({
                "method": "POST", "path": f"{path}/{target.id}", "status_code": 200,
                "duration_ms": round(self.rng.uniform(2, 900), 1), "message": " ".join(self.rng.choices(WORDS, k=6)),
            })
            ip = f"10.{self.rng.randint(0, 255)}.{self.rng.randint(0, 255)}.{self.rng.randint(1, 254)}"
            stamp = self._time(120).isoformat(sep=" ")
            lines.append(
                f"{self.rng.choice(self.user_ids)}\t{action}\t{resource}\t{target.id}\t{ip}\t"
                f"{self.rng.choice(_AGENTS)}\t{details}\t{stamp}\n"
            )
        return lines
