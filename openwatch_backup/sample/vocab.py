"""Word lists and the rule catalog the sample data is built from.

Findings draw their wording from a few hundred compliance words, so the text looks like SCAP output and
compresses like it: rule titles and descriptions repeat across scans (long-range matches, which zstd's
window sees and gzip's 32 KiB window mostly does not) while the per-finding evidence is random words.
Nothing here contains a tab, newline or backslash, so rows can be written as COPY text without escaping.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

_WORDS = """
    access account accounts accountability activity adjtimex administrator administrative aide alert
    algorithm allowed analysis anomaly application approved archive argument assessment asset
    assurance attempt attribute audit auditd auditing authentication authenticator authorization
    authorized automatic availability backup banner baseline binary boot bootloader boundary cache
    capability certificate chain change channel check checksum cipher ciphers class client cluster
    command compliance component condition confidentiality configuration configured connection
    consent console container content control controlled core credential critical cron cryptographic
    daemon data database default defined denial deny deployment derived descriptor detection device
    directory disabled discretionary disk domain duration effective element enabled encrypted
    encryption endpoint enforce enforcement enforcing entry environment error event evidence
    exception execution expiration exposure failure failed field file filesystem firewall flag
    forwarding function gateway group guidance handler hardening hash header hierarchy host
    identifier identity image immutable implementation inactive incident information inheritance
    initialization input installed integrity interactive interface interval inventory isolation
    kernel key keys label least level library limit limits lockout log logging login logon
    maintenance malicious management mandatory mapping maximum mechanism memory message method
    minimum mitigation mode module monitor monitoring mount multifactor namespace network node
    nonlocal notification object operating operation operator option organization owner ownership
    package packet parameter partition passphrase password patch path peer permission permissions
    persistent physical policy port posture privilege privileged procedure process processing
    profile program protected protection protocol provider proxy public query quota randomization
    rate read reboot record recovery redirect registry reject release remote remediation removable
    repository request required requirement resource response restricted restriction retention
    review risk role root rotation rule ruleset runtime sandbox scan schedule scope secure security
    segment sensitive separation sequence server service session setting severity shadow shell
    signature signed socket software source space stack standard startup state storage strength
    subsystem sudo supplementary suspicious symbolic synchronization syscall system target temporary
    terminal threshold timeout timestamp token traffic transfer transmission trust trusted
    unauthorized unit unprivileged update usage user username utility validation value variable
    vendor verification verify version violation virtual vulnerability warning weakness whitelist
    workstation world writable zone ensure verify restrict prevent require disable enable configure
    record limit protect review validate must shall should only all any each every within before
    after during without unless whether across between against through under must not
"""
WORDS: tuple[str, ...] = tuple(dict.fromkeys(_WORDS.split()))

_PATHS = """
    /etc/passwd /etc/shadow /etc/group /etc/gshadow /etc/login.defs /etc/ssh/sshd_config
    /etc/security/pwquality.conf /etc/security/faillock.conf /etc/pam.d/system-auth
    /etc/pam.d/password-auth /etc/audit/auditd.conf /etc/audit/rules.d/audit.rules /etc/sysctl.conf
    /etc/sudoers /etc/crontab /etc/cron.d /etc/cron.daily /etc/chrony.conf /etc/rsyslog.conf
    /etc/systemd/journald.conf /etc/fstab /etc/issue /etc/issue.net /etc/motd /etc/hosts.allow
    /etc/hosts.deny /etc/selinux/config /etc/default/grub /boot/grub2/grub.cfg /etc/aide.conf
    /etc/modprobe.d/disable.conf /etc/profile /etc/bashrc /etc/security/limits.conf /var/log/audit
    /var/log/messages /var/log/secure /tmp /var/tmp /dev/shm /home /var/log
"""
PATHS: tuple[str, ...] = tuple(_PATHS.split())

_SYSCTLS = """
    net.ipv4.ip_forward net.ipv4.conf.all.send_redirects net.ipv4.conf.default.send_redirects
    net.ipv4.conf.all.accept_redirects net.ipv4.conf.all.accept_source_route
    net.ipv4.conf.all.log_martians net.ipv4.conf.all.rp_filter net.ipv4.icmp_echo_ignore_broadcasts
    net.ipv4.tcp_syncookies net.ipv6.conf.all.accept_ra net.ipv6.conf.all.accept_redirects
    kernel.randomize_va_space kernel.dmesg_restrict kernel.kptr_restrict kernel.yama.ptrace_scope
    kernel.unprivileged_bpf_disabled fs.suid_dumpable fs.protected_hardlinks fs.protected_symlinks
    kernel.kexec_load_disabled
"""
SYSCTLS: tuple[str, ...] = tuple(_SYSCTLS.split())

_PACKAGES = """
    aide audit rsyslog chrony sudo firewalld nftables libselinux openssh-server telnet-server
    rsh-server tftp-server vsftpd httpd squid net-snmp ypserv xinetd avahi cups dhcp-server bind
    dovecot samba setroubleshoot mcstrans xorg-x11-server-common opensc pcsc-lite usbguard fapolicyd
    policycoreutils
"""
PACKAGES: tuple[str, ...] = tuple(_PACKAGES.split())

_SERVICES = """
    auditd rsyslog chronyd crond firewalld sshd usbguard fapolicyd kdump autofs avahi-daemon cups
    rpcbind nfs-server named smb snmpd squid vsftpd httpd nginx postfix bluetooth debug-shell
"""
SERVICES: tuple[str, ...] = tuple(_SERVICES.split())

_KERNEL_MODULES = """
    cramfs freevxfs jffs2 hfs hfsplus squashfs udf usb-storage dccp sctp rds tipc bluetooth atm can
"""
KERNEL_MODULES: tuple[str, ...] = tuple(_KERNEL_MODULES.split())

_SSHD_SETTINGS = """
    disable_root_login disable_empty_passwords set_idle_timeout set_keepalive set_max_auth_tries
    set_max_sessions set_login_grace_time enable_warning_banner disable_x11_forwarding
    disable_host_auth disable_rhosts use_strong_ciphers use_strong_macs use_strong_kex
    do_not_permit_user_env enable_pubkey_auth set_loglevel_verbose limit_user_access
    disable_gssapi_auth disable_kerb_auth enable_strictmodes print_last_log
"""
SSHD_SETTINGS: tuple[str, ...] = tuple(_SSHD_SETTINGS.split())

_AUDIT_SYSCALLS = """
    adjtimex settimeofday clock_settime stime chmod fchmod fchmodat chown fchown lchown fchownat
    setxattr lsetxattr fsetxattr removexattr open openat creat truncate ftruncate unlink unlinkat
    rename renameat rmdir init_module finit_module delete_module mount umount2 execve kexec_load
"""
AUDIT_SYSCALLS: tuple[str, ...] = tuple(_AUDIT_SYSCALLS.split())

MOUNTS: tuple[str, ...] = ("tmp", "var_tmp", "dev_shm", "home", "var_log", "var_log_audit", "boot")
MOUNT_OPTIONS: tuple[str, ...] = ("nodev", "nosuid", "noexec")

PROFILES: tuple[str, ...] = (
    "xccdf_org.ssgproject.content_profile_cis",
    "xccdf_org.ssgproject.content_profile_cis_server_l1",
    "xccdf_org.ssgproject.content_profile_stig",
    "xccdf_org.ssgproject.content_profile_pci-dss",
    "xccdf_org.ssgproject.content_profile_ospp",
    "xccdf_org.ssgproject.content_profile_hipaa",
    "xccdf_org.ssgproject.content_profile_e8",
    "xccdf_org.ssgproject.content_profile_anssi_bp28_high",
)

RULE_PREFIX = "xccdf_org.ssgproject.content_rule_"


@dataclass(frozen=True, slots=True)
class Rule:
    rule_id: str
    title: str
    severity: str
    framework_section: str
    description: str


def _references(rng: random.Random) -> str:
    # SCAP rules carry identifier lists (CCE, CCI, SRG, STIG ids): high-entropy tokens that repeat per rule.
    refs = [f"CCE-{rng.randint(80000, 90999)}-{rng.randint(0, 9)}"]
    for _ in range(6):
        kind = rng.randrange(4)
        if kind == 0:
            refs.append(f"CCI-{rng.randint(0, 3000):06d}")
        elif kind == 1:
            refs.append(f"SRG-OS-{rng.randint(1, 500):06d}-GPOS-{rng.randint(1, 999):05d}")
        elif kind == 2:
            refs.append(f"SV-{rng.randint(200000, 299999)}r{rng.randint(100000, 999999)}_rule")
        else:
            refs.append(f"ISO27001-A.{rng.randint(5, 18)}.{rng.randint(1, 7)}.{rng.randint(1, 5)}")
    return ", ".join(refs)


def _sections(rng: random.Random) -> str:
    # Each rule maps to one framework's section numbering, as the scanner's reference lists do.
    kind = rng.randrange(4)
    if kind == 0:
        return f"CIS {rng.randint(1, 6)}.{rng.randint(1, 9)}.{rng.randint(1, 12)}"
    if kind == 1:
        family = rng.choice(("AC", "AU", "CM", "IA", "SC", "SI", "MP"))
        return f"NIST 800-53 {family}-{rng.randint(1, 20)}({rng.randint(1, 9)})"
    if kind == 2:
        return f"DISA STIG RHEL-0{rng.choice((8, 9))}-0{rng.randint(10000, 99999)}"
    return f"PCI-DSS Req-{rng.randint(1, 12)}.{rng.randint(1, 9)}.{rng.randint(1, 9)}"


def _catalog_names() -> list[tuple[str, str]]:
    """(rule name, title) for every rule, in a fixed order."""
    names: list[tuple[str, str]] = []
    for p in PATHS:
        slug = p.strip("/").replace("/", "_").replace(".", "_").replace("-", "_")
        names.append((f"file_permissions_{slug}", f"Verify Permissions on {p}"))
        names.append((f"file_owner_{slug}", f"Verify User Who Owns {p}"))
        names.append((f"file_groupowner_{slug}", f"Verify Group Who Owns {p}"))
    for s in SYSCTLS:
        names.append((f"sysctl_{s.replace('.', '_')}", f"Configure Kernel Parameter {s}"))
    for pkg in PACKAGES:
        names.append((f"package_{pkg.replace('-', '_')}_installed", f"Install the {pkg} Package"))
        names.append((f"package_{pkg.replace('-', '_')}_removed", f"Uninstall the {pkg} Package"))
    for svc in SERVICES:
        names.append((f"service_{svc.replace('-', '_')}_enabled", f"Enable the {svc} Service"))
        names.append((f"service_{svc.replace('-', '_')}_disabled", f"Disable the {svc} Service"))
    for mod in KERNEL_MODULES:
        names.append((f"kernel_module_{mod.replace('-', '_')}_disabled", f"Disable Mounting of {mod}"))
    for st in SSHD_SETTINGS:
        names.append((f"sshd_{st}", f"SSH Server: {st.replace('_', ' ').title()}"))
    for sc in AUDIT_SYSCALLS:
        names.append((f"audit_rules_dac_modification_{sc}", f"Record Events That Use the {sc} Syscall"))
        names.append((f"audit_rules_unsuccessful_{sc}", f"Record Unsuccessful Calls to {sc}"))
    for m in MOUNTS:
        for o in MOUNT_OPTIONS:
            names.append((f"mount_option_{m}_{o}", f"Add {o} Option to /{m.replace('_', '/')}"))
    for what in ("minlen", "dcredit", "ucredit", "lcredit", "ocredit", "difok", "maxrepeat", "retry"):
        names.append((f"accounts_password_pam_{what}", f"Ensure PAM Enforces Password Requirements - {what}"))
    for what in ("maximum_age_login_defs", "minimum_age_login_defs", "warn_age_login_defs", "minlen"):
        names.append((f"accounts_{what}", f"Set Password {what.replace('_', ' ').title()}"))
    return names


def build_rules(rng: random.Random) -> list[Rule]:
    """The rule catalog: about 390 rules with stable ids, titles and descriptions for one seed."""
    rules: list[Rule] = []
    for name, title in _catalog_names():
        severity = rng.choices(("high", "medium", "low", "unknown"), weights=(15, 60, 20, 5))[0]
        prose = " ".join(rng.choices(WORDS, k=rng.randint(20, 40)))
        description = f"{prose}. References: {_references(rng)}"
        rules.append(Rule(RULE_PREFIX + name, title, severity, _sections(rng), description))
    return rules


def build_profiles(rules: list[Rule], rng: random.Random) -> dict[str, list[Rule]]:
    """Each profile selects a fixed subset of the catalog, in catalog order, as SCAP profiles do."""
    profiles: dict[str, list[Rule]] = {}
    for name in PROFILES:
        keep = rng.uniform(0.4, 0.9)
        profiles[name] = [r for r in rules if rng.random() < keep]
    return profiles
