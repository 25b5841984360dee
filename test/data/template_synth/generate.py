#!/usr/bin/python3
"""test/data/template_synth/generate.py - adversarial log sets for the template miner.

Writes one CSV per failure class seen on Loghub systems the miner was not
developed on (LineId,EventId,Content, like Loghub's structured files), with
the true event of every line.  Each class mixes events whose variables are
hard to see (the class) with confusers: events that differ from them only by
a constant word, a constant token or their length, so that a miner which
simply merges more cannot pass either.  Lines are interleaved at random; the
output is deterministic (fixed seed) and committed, so the tests read the
files, and this script only documents and regenerates them:

    /usr/bin/python3 test/data/template_synth/generate.py

Nothing here comes from Loghub: vocabularies and message shapes are made up
for this file (in the styles of sshd, proxies, Android, Java and cluster
managers).
"""
import csv
import os
import random

R = random.Random(20260512)
HERE = os.path.dirname(os.path.abspath(__file__))

WORDS = ["alpha", "beta", "gamma", "delta", "orion", "vega", "lyra", "atlas",
         "cobalt", "ember", "falcon", "harbor", "indigo", "juniper", "kestrel",
         "lumen", "marble", "nectar", "opal", "pepper", "quartz", "raven",
         "saffron", "tundra", "umber", "velvet", "willow", "yonder", "zephyr",
         "mail", "proxy", "api", "static", "edge", "cdn", "auth", "files"]
TLDS = ["com", "net", "org", "edu", "io", "de", "uk", "fr", "info", "jp"]
USERS = ["admin", "test", "oracle", "guest", "support", "ubuntu", "postgres",
         "deploy", "git", "nagios", "backup", "www", "ftp", "alice", "bob",
         "carol", "dave", "mallory", "operator", "service", "monitor",
         "jenkins", "hadoop", "spark", "mysql", "student", "info", "sales",
         "user", "webmaster", "pi", "tomcat", "ansible", "zabbix", "olivia"]
PKG = ["com.acme.billing", "com.example.mail.sync", "org.corp.auth.session",
       "net.shop.cart", "com.vendor.maps.tiles", "org.project.core.cache",
       "com.android.systemui", "com.google.android.gms", "org.sample.widget",
       "com.apple.photos.agent", "io.stream.kafka.consumer"]
UA_WORDS = ["View Lock", "WindowManager", "AudioMix", "sync job", "Wake Alarm",
            "location updates", "GCM", "NlpWakeLock", "*alarm*", "push queue"]


def host():
    n = R.choice([2, 3, 3, 4])
    return ".".join(R.choice(WORDS) for _ in range(n - 1)) + "." + R.choice(TLDS)


def ip():
    return "%d.%d.%d.%d" % (R.randint(1, 223), R.randint(0, 255), R.randint(0, 255), R.randint(1, 254))


def port():
    return str(R.choice([22, 80, 443, 5070, 8080, 9092, R.randint(1024, 65535)]))


def hexs(n):
    return "".join(R.choice("0123456789abcdef") for _ in range(n))


def num(a=0, b=99999):
    return str(R.randint(a, b))


def boolean():
    return R.choice(["true", "false"])


def user():
    return R.choice(USERS)


def state_pair(pairs):
    return R.choice(pairs)


# ---- class 1: variables glued to text or punctuation ----
GLUED = {
    "G1": lambda: "Connection to %s:%s established" % (R.choice([ip(), host()]), port()),
    "G2": lambda: "Connection to %s:%s closed by peer" % (R.choice([ip(), host()]), port()),
    "G3": lambda: "Accepted login %s@%s via ssh" % (user(), host()),
    "G4": lambda: "worker(%s) exited with status %s" % (num(100, 65000), num(0, 255)),
    "G5": lambda: "worker(%s) started" % num(100, 65000),
    "G6": lambda: "cron[%s]: job #%s queued at position %s" % (num(100, 65000), num(1, 9999), num(0, 50)),
    "G7": lambda: "cache stats: hit_ratio=%s%% size=%sKB evictions=%s" % (num(0, 100), num(1, 9000), num(0, 900)),
    "G8": lambda: "request id=%s-%s user=%s@%s took %sms" % (hexs(8), hexs(4), user(), host(), num(1, 5000)),
    "G9": lambda: "retry policy max_attempts=%s backoff=%ss" % (num(1, 9), num(1, 60)),
    "G10": lambda: "mount (%s) on <%s> failed (errno=%s)" % (R.choice(["/dev/sdb1", "/dev/nvme0n1p2", "/dev/sda3"]), R.choice(["/mnt/data", "/srv/backup", "/var/lib/x"]), num(1, 40)),
    "G11": lambda: "lease [%s] renewed for %ss by %s" % (hexs(12), num(5, 600), R.choice([ip(), host()])),
    "G12": lambda: "lease [%s] expired" % hexs(12),
    "G13": lambda: "Delivered to %s@%s-%s%s via local" % (user(), R.choice(WORDS), R.choice(WORDS), num(1, 20)),
}

# ---- class 2: host and domain names without digits ----
HOSTS = {
    "H1": lambda: "%s:%s open through proxy %s:%s HTTPS" % (host(), port(), host(), port()),
    "H2": lambda: "%s:%s open through proxy %s:%s SOCKS5" % (host(), port(), host(), port()),
    "H3": lambda: "%s:%s close, %s bytes sent, %s bytes received, lifetime %s" % (host(), port(), num(), num(), R.choice(["%d:%02d" % (R.randint(0, 59), R.randint(0, 59)), "<1 sec"])),
    "H4": lambda: "%s:%s close, %s bytes (%s.%s KB) sent, %s bytes received, lifetime %s:%02d" % (host(), port(), num(), num(1, 99), num(0, 99), num(), num(0, 59), R.randint(0, 59)),
    "H5": lambda: "Resolved %s to %s" % (host(), ip()),
    "H6": lambda: "reverse mapping checking getaddrinfo for %s [%s] failed - POSSIBLE BREAK-IN ATTEMPT!" % (host(), ip()),
    "H7": lambda: "DNS lookup for %s timed out after %s ms" % (host(), num(100, 9000)),
    "H8": lambda: "Mail from <%s@%s> accepted for delivery" % (user(), host()),
    "H9": lambda: "Upstream %s is unreachable" % host(),
    "H10": lambda: "Upstream %s is healthy again" % host(),
}

# ---- class 3: variables that are words ----
TRANS = [("NEW", "RUNNING"), ("RUNNING", "SUCCEEDED"), ("RUNNING", "FAILED"), ("FAILED", "RETRYING")]
WORDV = {
    "W1": lambda: "Invalid user %s from %s" % (user(), ip()),
    "W2": lambda: "input_userauth_request: invalid user %s [preauth]" % user(),
    "W3": lambda: "pam_unix(sshd:session): session opened for user %s by (uid=%s)" % (user(), num(0, 1000)),
    "W4": lambda: "pam_unix(sshd:session): session closed for user %s" % user(),
    "W5": lambda: "Failed password for invalid user %s from %s port %s ssh2" % (user(), ip(), port()),
    "W6": lambda: "Loaded plugin %s version %s.%s" % (R.choice(PKG), num(0, 9), num(0, 30)),
    "W7": lambda: "setVisibility visible=%s animate=%s" % (boolean(), boolean()),
    "W8": lambda: "Start proc %s:%s/u0a%s for service %s/.SyncService" % (num(1000, 32000), R.choice(PKG), num(10, 200), R.choice(PKG)),
    # enumerations that are not variables: each transition is an event
    "W9": lambda: "Task task_%s transitioned from NEW to RUNNING" % num(),
    "W10": lambda: "Task task_%s transitioned from RUNNING to SUCCEEDED" % num(),
    "W11": lambda: "Task task_%s transitioned from RUNNING to FAILED" % num(),
    # words that tell events apart after a colon
    "W12": lambda: "Changing view acls to: yarn,spark",
    "W13": lambda: "Changing modify acls to: yarn,spark",
}

# ---- class 4: one event, varying token count ----
def datanodes():
    return " ".join("%s:%s" % (ip(), port()) for _ in range(R.randint(1, 4)))


def hostlist():
    return ", ".join(host() for _ in range(R.randint(1, 4)))


VARLEN = {
    "V1": lambda: "Receiving block blk_%s from datanodes %s" % (num(), datanodes()),
    "V2": lambda: "acquire lock=%s, flags=0x%s, tag=\"%s\", name=%s, ws=null, uid=%s, pid=%s" % (num(), hexs(1), R.choice(UA_WORDS), R.choice(PKG), num(1000, 20000), num(100, 32000)),
    "V3": lambda: "release lock=%s, flags=0x%s, tag=\"%s\", name=%s, ws=null, uid=%s, pid=%s" % (num(), hexs(1), R.choice(UA_WORDS), R.choice(PKG), num(1000, 20000), num(100, 32000)),
    "V4": lambda: "Started %s executors on hosts %s" % (num(1, 64), hostlist()),
    "V5": lambda: "Skipping %s frames!  The application may be doing too much work on its main thread." % num(30, 900),
    "V6": lambda: "Removed %s stale files: %s" % (num(1, 9), " ".join(R.choice(["/tmp/a.lock", "/var/run/x.pid", "/srv/cache/%s.bin" % hexs(6)]) for _ in range(R.randint(1, 3)))),
    # a dotted key is a constant (one event per key), its quoted value is not
    "V7": lambda: "Set property display.name to \"%s\"" % " ".join(R.choice(WORDS) for _ in range(R.randint(1, 4))),
    "V10": lambda: "Set property device.label to \"%s\"" % " ".join(R.choice(WORDS) for _ in range(R.randint(1, 4))),
    "V8": lambda: "Heartbeat from %s took %s ms (queue %s)" % (ip(), num(1, 900), num(0, 99)),
    "V9": lambda: "Heartbeat from %s missed" % ip(),
}

# ---- class 5: long messages with many variables ----
STATES = ["LOOKING", "FOLLOWING", "LEADING"]


def long_container():
    return ("Cannot assign container Container: [ContainerId: container_%s_%s_01_%s, NodeId: %s:%s, "
            "NodeHttpAddress: %s:%s, Resource: <memory:%s, vCores:%s>, Priority: %s, Token: Token { kind: "
            "ContainerToken, service: %s:%s }, ] for a map as either container memory less than required "
            "<memory:%s, vCores:%s> or no pending map tasks - maps.isEmpty=%s"
            % (num(10**12, 10**13), num(1, 99), num(1, 999), host(), port(), host(), port(), num(512, 8192),
               num(1, 8), num(1, 20), ip(), port(), num(512, 8192), num(1, 8), boolean()))


LONG = {
    "L1": long_container,
    "L2": lambda: ("getResources() for application_%s_%s: ask=%s release= %s newContainers=%s finishedContainers=%s "
                   "resourcelimit=<memory:%s, vCores:%s> knownNMs=%s" % (num(10**12, 10**13), num(1, 99), num(0, 9),
                                                                        num(0, 9), num(0, 9), num(0, 9), num(0, 99999), num(-5, 5), num(1, 9))),
    "L3": lambda: ("printFreezingDisplayLogsopening app wtoken = AppWindowToken{%s token=Token{%s ActivityRecord{%s u0 %s/.%s t%s}}}, "
                   "allDrawn= %s, startingDisplayed =  %s, startingMoved =  %s, isRelaunching =  %s"
                   % (hexs(7), hexs(7), hexs(7), R.choice(PKG), R.choice(["MainActivity", "SettingsActivity", "Launcher"]),
                      num(1, 9999), boolean(), boolean(), boolean(), boolean())),
    "L4": lambda: ("ARPT: %s.%s: wl0: wl_update_tcpkeep_seq: Original Seq: %s, Ack: %s, Win size: %s"
                   % (num(100000, 999999), num(100000, 999999), num(), num(), num(1, 65535))),
    "L5": lambda: ("client=%s ip=%s session=%s bytes_in=%s bytes_out=%s duration=%s.%ss retries=%s cached=%s region=%s"
                   % (host(), ip(), hexs(16), num(), num(), num(0, 99), num(0, 999), num(0, 5), boolean(), host())),
}
for a in STATES:
    for b in STATES[:2]:
        LONG["L6_%s_%s" % (a, b)] = (lambda a=a, b=b: "Notification: %s (n.leader), 0x%s (n.zxid), 0x%s (n.round), %s (n.state), %s (n.sid), 0x%s (n.peerEPoch), %s (my state)"
                                     % (num(1, 5), hexs(9), hexs(1), a, num(1, 5), hexs(1), b))

# ---- whole logs in the styles of common daemons: every class at once ----
def sha():
    return "".join(R.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") for _ in range(43))


SSHD = {
    "S1": lambda: "Failed password for root from %s port %s ssh2" % (ip(), num(1024, 65535)),
    "S2": lambda: "Failed password for invalid user %s from %s port %s ssh2" % (user(), ip(), num(1024, 65535)),
    "S3": lambda: "Accepted publickey for %s from %s port %s ssh2: RSA SHA256:%s" % (user(), ip(), num(1024, 65535), sha()),
    "S4": lambda: "Received disconnect from %s port %s:11: Bye Bye [preauth]" % (ip(), num(1024, 65535)),
    "S5": lambda: "Disconnected from authenticating user root %s port %s [preauth]" % (ip(), num(1024, 65535)),
    "S6": lambda: "Connection closed by %s port %s [preauth]" % (ip(), num(1024, 65535)),
    "S7": lambda: "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=%s  user=root" % R.choice([ip(), host()]),
    "S8": lambda: "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=%s" % R.choice([ip(), host()]),
    "S9": lambda: "PAM %s more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=%s  user=root" % (num(1, 5), ip()),
    "S10": lambda: "error: maximum authentication attempts exceeded for root from %s port %s ssh2 [preauth]" % (ip(), num(1024, 65535)),
    "S11": lambda: "Did not receive identification string from %s" % ip(),
    "S12": lambda: "reverse mapping checking getaddrinfo for %s [%s] failed - POSSIBLE BREAK-IN ATTEMPT!" % (host(), ip()),
    "S13": lambda: "Address %s maps to %s, but this does not map back to the address - POSSIBLE BREAK-IN ATTEMPT!" % (ip(), host()),
    "S14": lambda: "message repeated %s times: [ Failed password for root from %s port %s ssh2]" % (num(2, 9), ip(), num(1024, 65535)),
    "S15": lambda: "Invalid user %s from %s port %s" % (user(), ip(), num(1024, 65535)),
    "S16": lambda: "pam_unix(sshd:session): session opened for user %s by (uid=0)" % user(),
    "S17": lambda: "pam_unix(sshd:session): session closed for user %s" % user(),
}

KBS = ["KB2667402", "KB3004394", "KB2533552", "KB4012212", "KB976902"]
CBS = {
    "C1": lambda: "Loaded Servicing Stack v6.1.7601.%s with Core: C:\\Windows\\winsxs\\amd64_microsoft-windows-servicingstack_31bf3856ad364e35_6.1.7601.%s_none_%s\\cbscore.dll" % (num(17000, 24000), num(17000, 24000), hexs(16)),
    "C2": lambda: "Session: %s_%s initialized by client WindowsUpdateAgent." % (num(10**7, 10**8), num(10**9, 2 * 10**9)),
    "C3": lambda: "Read out cached package applicability for package: Package_for_%s~31bf3856ad364e35~amd64~~6.1.%s.%s, ApplicableState: %s, CurrentState:%s" % (R.choice(KBS), num(1, 9), num(0, 9), R.choice(["80", "112"]), R.choice(["0", "112"])),
    "C4": lambda: "Warning: Unrecognized packageExtended attribute.",
    "C5": lambda: "Expecting attribute name [HRESULT = 0x800f080d - CBS_E_MANIFEST_INVALID_ITEM]",
    "C6": lambda: "Failed to get next element [HRESULT = 0x800f080d - CBS_E_MANIFEST_INVALID_ITEM]",
    "C7": lambda: "SQM: Initializing online with Windows opt-in: False",
    "C8": lambda: "SQM: Cleaning up report files older than %s days." % num(5, 30),
    "C9": lambda: "SQM: Failed to start upload with file pattern: C:\\Windows\\servicing\\sqm\\*_std.sqm, flags: 0x%s [HRESULT = 0x80004005 - E_FAIL]" % hexs(1),
    "C10": lambda: "Starting the TrustedInstaller main loop.",
    "C11": lambda: "Ending the TrustedInstaller main loop.",
    "C12": lambda: "Trusted Installer is shutting down because: SHUTDOWN_REASON_AUTOSTOP",
    "C13": lambda: "Idle processing thread terminated normally",
}

APPS = ["com.tencent.mm", "com.android.phone", "com.whatsapp", "com.google.android.gms.persistent", "com.android.systemui"]
ANDROID = {
    "A1": VARLEN["V2"],
    "A2": VARLEN["V3"],
    "A3": VARLEN["V5"],
    "A4": LONG["L3"],
    "A5": lambda: "Start proc %s:%s/u0a%s for broadcast %s/.%s" % (num(1000, 32000), R.choice(APPS), num(10, 200), R.choice(APPS), R.choice(["SyncReceiver", "AlarmReceiver"])),
    "A6": lambda: "setLightsOn(%s)" % boolean(),
    "A7": lambda: "handleMessage: what=%s, arg1=%s, arg2=%s" % (num(1000, 1100), num(0, 9), num(0, 9)),
    "A8": lambda: "getRunningAppProcesses: caller %s getting app processes" % num(10000, 10200),
    "A9": lambda: "cleanUpApplicationRecord -- %s" % num(1000, 32000),
    "A10": lambda: "notifyAppsSuspendedChanged packages=[%s] suspended=%s" % (R.choice(APPS), boolean()),
    "A11": lambda: "visible is %s" % boolean(),
    "A12": lambda: "mWakefulness=Awake, mScreenOn=%s, mDisplayReady=%s" % (boolean(), boolean()),
}

HEALTH = {
    "HA1": lambda: "onStandStepChanged %s" % num(1000, 9999),
    "HA2": lambda: "onExtend:%s %s %s %s" % (num(10**12, 2 * 10**12), num(0, 30), num(0, 9), num(0, 9)),
    "HA3": lambda: "REPORT : %s %s %s %s" % (num(1000, 9999), num(1000, 9999), num(100, 200), num(200, 300)),
    "HA4": lambda: "setTodayTotalDetailSteps=%s##%s##%s##%s##%s##%s" % (num(10**12, 2 * 10**12), num(1000, 9999), num(10**5, 10**6), num(1000, 9999), num(1000, 20000), num(10**7, 10**8)),
    "HA5": lambda: "calculateCaloriesWithCache totalCalories=%s" % num(10**4, 10**6),
    "HA6": lambda: "calculateAltitudeWithCache totalAltitude=%s" % num(0, 500),
    "HA7": lambda: "processHandleBroadcastAction action:android.intent.action.%s" % R.choice(["SCREEN_ON", "SCREEN_OFF", "TIME_TICK", "USER_PRESENT"]),
    "HA8": lambda: "onReceive action: android.intent.action.%s" % R.choice(["SCREEN_ON", "SCREEN_OFF", "TIME_TICK"]),
    "HA9": lambda: "flush sensor data",
    "HA10": lambda: "getTodayTotalDetailSteps = %s##%s##%s##%s##%s##%s" % (num(10**12, 2 * 10**12), num(1000, 9999), num(10**5, 10**6), num(1000, 9999), num(1000, 20000), num(10**7, 10**8)),
    "HA11": lambda: "upLoadOneMinuteDataToEngine time=%s" % num(10**12, 2 * 10**12),
    "HA12": lambda: "screen status unknown,think screen on",
}

HOSTS_TB = ["tbird-admin1", "tbird-sm1", "an%d" % 1, "dn%d" % 228, "bn%d" % 251, "cn%d" % 12]
SYSLOG = {
    "Y1": lambda: "(root) CMD (run-parts /etc/cron.%s)" % R.choice(["hourly", "daily", "weekly"]),
    "Y2": lambda: "synchronized to %s, stratum %s" % (ip(), num(1, 4)),
    # an interface name is a constant in Loghub's ground truth (HPC: alt0, ee0)
    "Y3": lambda: "DHCPREQUEST on eth0 to %s port 67" % ip(),
    "Y4": lambda: "DHCPACK from %s (xid=0x%s)" % (ip(), hexs(8)),
    "Y5": lambda: "session opened for user %s by (uid=0)" % user(),
    "Y6": lambda: "session closed for user %s" % user(),
    "Y7": lambda: "[ib_sm_sweep.c:%s]: No topology change" % num(1000, 2000),
    "Y8": lambda: "[ib_sm_sweep.c:%s]: Topology changed" % num(1000, 2000),
    "Y9": lambda: "%s: %s bytes from %s@%s" % (hexs(10).upper(), num(100, 9000), user(), R.choice(HOSTS_TB)),
    "Y10": lambda: "check pass; user unknown",
    "Y11": lambda: "authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=%s" % R.choice([ip(), host()]),
    "Y12": lambda: "connection from %s (%s) at %s %s %s %s:%s:%s %s" % (ip(), host(), R.choice(["Mon", "Tue", "Sat"]), R.choice(["Jun", "Jul"]), num(1, 28), num(10, 23), num(10, 59), num(10, 59), num(2004, 2006)),
    # a word in parentheses after a number: a variable here, a constant label
    # in Zookeeper's "<*> (n.leader)"; no rule can tell, so it is not varied
    "Y13": lambda: "Out of memory: Killed process %s (mpirun)." % num(1000, 30000),
    "Y14": lambda: "imklog %s.%s.%s, log source = /proc/kmsg started." % (num(1, 5), num(0, 20), num(0, 9)),
    "Y15": lambda: "restart (remote reconfiguration)",
}

MAC = {
    "M1": LONG["L4"],
    "M2": lambda: "Sandbox: %s(%s) deny(1) network-outbound /private/var/run/mDNSResponder" % (R.choice(["com.apple.Addres", "com.apple.WebKit", "ksfetch"]), num(100, 9000)),
    "M3": lambda: "AirPort: Link Up on awdl0",
    "M4": lambda: "AirPort: Link Down on awdl0. Reason 1 (Unspecified).",
    "M5": lambda: "en0: channel changed to %s,%s" % (num(1, 165), R.choice(["+1", "-1", "+2"])),
    # "Wake reason: X (Y)" may be one event or one per reason: not varied
    "M6": lambda: "Wake reason: ARPT (Network)",
    "M7": lambda: "%s: scheduler_evaluate_activity told me to run this job; however, but the start time isn't for %s seconds.  Ignoring." % (R.choice(["com.apple.SocialPushAgent.poll.interval", "com.apple.CacheDelete.daily", "com.apple.photoanalysisd.periodic"]), num(1000, 500000)),
    "M8": lambda: "IO80211AWDLPeerManager::setAwdlAutoMode Resuming AWDL",
    "M9": lambda: "process %s[%s] caught causing excessive wakeups. Observed wakeups rate (per sec): %s; Maximum permitted wakeups rate (per sec): 150; Observation period: 300 seconds; Task lifetime number: %s" % (R.choice(["mds", "cloudd", "Dock"]), num(100, 9000), num(151, 2000), num(10**8, 10**9)),
    # a driver named by a CamelCase identifier
    "M10": lambda: "Setting device power state for %s to %s" % (R.choice(["AppleHDAController", "IOAudioEngine", "IOThunderboltSwitch"]), num(0, 2)),
    "M11": lambda: "[HID] [MT] AppleMultitouchDevice::willTerminate entered",
    "M12": lambda: "CCFile::captureLogRun Skipping current file Dir file [%s]-AirPortBrcm4360_Logs-%s.txt, Current File [%s]-AirPortBrcm4360_Logs-%s.txt" % (
        "2017-07-%02d_%02d,%02d,%02d.%s" % (R.randint(1, 9), R.randint(0, 23), R.randint(0, 59), R.randint(0, 59), num(100000, 999999)), num(1, 20),
        "2017-07-%02d_%02d,%02d,%02d.%s" % (R.randint(1, 9), R.randint(0, 23), R.randint(0, 59), R.randint(0, 59), num(100000, 999999)), num(1, 20)),
}

CLASSES = [("glued", GLUED), ("hostnames", HOSTS), ("wordvars", WORDV),
           ("varlen", VARLEN), ("long", LONG), ("style_sshd", SSHD),
           ("style_cbs", CBS), ("style_android", ANDROID), ("style_health", HEALTH),
           ("style_syslog", SYSLOG), ("style_mac", MAC)]


def write(name, events, lines=1500):
    keys = sorted(events)
    # skewed event frequencies, every event at least 8 times
    weights = [R.choice([1, 2, 4, 8]) for _ in keys]
    rows = [k for k in keys for _ in range(8)]
    rows += R.choices(keys, weights=weights, k=lines - len(rows))
    R.shuffle(rows)
    with open(os.path.join(HERE, name + ".csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["LineId", "EventId", "Content"])
        for i, k in enumerate(rows, 1):
            w.writerow([i, k, events[k]()])


if __name__ == "__main__":
    for name, events in CLASSES:
        write(name, events)
