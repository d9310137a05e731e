"""The monitoring surfaces side by side with Apache ZooKeeper 3.8 (Debian's,
its AdminServer on, with Debian's Jetty 9 on the class path):

  - mntr: every key ZooKeeper writes is in quorumd's mntr, or in NOT_HERE
    with the reason it has no meaning in quorumd; quorumd's own keys start
    with quorum_; every value is a number where ZooKeeper's is;
  - the AdminServer: the /commands list, and for each command ZooKeeper
    has, the same JSON keys (nested objects too), the status code of an
    unknown command, and bad input (a POST with a body over the limit,
    a request line of garbage, a header section over the limit) answered
    with an error while the server goes on serving;
  - /metrics (Prometheus text, quorumd only: Debian's ZooKeeper has no
    Prometheus provider) parsed by python3-prometheus-client, scraped
    during a write load: the counters and summaries move, every sample
    of a counter only grows, and mntr's figures are the same ones.
"""
import json
import os
import re
import socket
import threading
import time
import urllib.error
import urllib.request

from harness import (ZK_CLASSPATH, Quorumd, ZooKeeper, close_clients, ensemble_for,
                     four_letter, free_port, kazoo_client, run_tests, running)

JETTY = ["jetty9-server", "jetty9-servlet", "jetty9-util", "jetty9-util-ajax", "jetty9-http",
         "jetty9-io", "jetty9-security", "servlet-api"]
PROMETHEUS_PROVIDER = "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider"

# mntr keys of ZooKeeper 3.8 that have no meaning in quorumd, by why. A key
# of a summary (avg/min/max/cnt/sum/p50/...) is listed by its base name.
NOT_HERE = {
    # the JVM, Netty and TLS
    "jvm_pause_time_ms": "no JVM",
    "netty_queued_buffer_capacity": "no Netty",
    "outstanding_tls_handshake": "no TLS client port",
    "tls_handshake_exceeded": "no TLS client port",
    "non_mtls_local_conn_count": "no TLS client port",
    "non_mtls_remote_conn_count": "no TLS client port",
    "insecure_admin_count": "no TLS AdminServer",
    "ensemble_auth_fail": "no quorum SASL",
    "ensemble_auth_skip": "no quorum SASL",
    "ensemble_auth_success": "no quorum SASL",
    "digest_mismatches_count": "no tree digests (hash lists none)",
    "local_sessions": "no local sessions",
    "skip_learner_request_to_next_processor_count": "no local sessions",
    # stages and queues ZooKeeper's request pipeline has and quorumd's has
    # not: a request is prepped as it is read, a txn applied as it commits,
    # a read answered as it is read, all on the loop thread
    "prep_processor_queue_size": "no queue before prep",
    "prep_processor_queue_time_ms": "no queue before prep",
    "prep_processor_request_queued": "no queue before prep",
    "learner_request_processor_queue_size": "a follower forwards a write as it reads it",
    "commit_commit_proc_req_queued": "no CommitProcessor",
    "concurrent_request_processing_in_commit_processor": "no CommitProcessor",
    "read_commit_proc_issued": "no CommitProcessor",
    "read_commit_proc_req_queued": "no CommitProcessor",
    "read_commitproc_time_ms": "no CommitProcessor",
    "write_commit_proc_issued": "no CommitProcessor",
    "write_commit_proc_req_queued": "no CommitProcessor",
    "write_commitproc_time_ms": "no CommitProcessor",
    "write_batch_time_in_commit_processor": "no CommitProcessor",
    "time_waiting_empty_pool_in_commit_processor_read_ms": "no CommitProcessor",
    "session_queues_drained": "no CommitProcessor",
    "reads_after_write_in_session_queue": "no CommitProcessor",
    "reads_issued_from_session_queue": "no CommitProcessor",
    "requests_in_session_queue": "no CommitProcessor",
    "pending_session_queue_size": "no CommitProcessor",
    "request_commit_queued": "no CommitProcessor",
    "requests_not_forwarded_to_commit_processor": "no CommitProcessor",
    "read_final_proc_time_ms": "no FinalRequestProcessor stage: see readlatency",
    "write_final_proc_time_ms": "no FinalRequestProcessor stage: see updatelatency",
    "local_write_committed_time_ms": "a txn is applied in the call that commits it",
    "server_write_committed_time_ms": "a txn is applied in the call that commits it",
    "commit_propagation_latency": "needs the leader's clock in each Commit",
    "request_throttle_queue_time_ms":
        "the throttle stops reading connections; no request waits in a queue",
    "throttled_ops": "the throttle drops nothing (request_throttle_wait_count)",
    "stale_requests": "no RequestThrottler dropping stale requests",
    "stale_requests_dropped": "no RequestThrottler dropping stale requests",
    "stale_replies": "no RequestThrottler dropping stale requests",
    "connection_drop_count": "no connection token bucket: connection_rejected",
    "connection_drop_probability": "no connection token bucket: connection_rejected",
    "connection_token_deficit": "no connection token bucket: connection_rejected",
    "socket_closing_time": "closing a socket is asynchronous (libuv)",
    "add_dead_watcher_stall_time": "a closed session's watches go at once, no cleaner",
    "dead_watchers_cleaner_latency": "a closed session's watches go at once, no cleaner",
    "dead_watchers_cleared": "a closed session's watches go at once, no cleaner",
    "dead_watchers_queued": "a closed session's watches go at once, no cleaner",
    "response_packet_cache_hits": "no cache of serialized replies",
    "response_packet_cache_misses": "no cache of serialized replies",
    "response_packet_get_children_cache_hits": "no cache of serialized replies",
    "response_packet_get_children_cache_misses": "no cache of serialized replies",
    "quit_leading_due_to_disloyal_voter": "ZAB here has no disloyal-voter rule",
    # observers sync from the leader: no follower is an observer master
    "om_commit_process_time_ms": "no observer master (observerMasterPort)",
    "om_proposal_process_time_ms": "no observer master (observerMasterPort)",
}


def admin_zookeeper_classpath():
    jars = [os.path.join("/usr/share/java", j + ".jar") for j in JETTY]
    missing = [j for j in jars if not os.path.exists(j)]
    if missing:
        raise RuntimeError("Jetty 9 for ZooKeeper's AdminServer: %s missing" % missing)
    return ZK_CLASSPATH + ":" + ":".join(jars)


class AdminZooKeeper(ZooKeeper):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.admin_port = free_port()

    def config_lines(self):
        lines = [l for l in super().config_lines() if not l.startswith("admin.")]
        return lines + ["admin.enableServer=true", "admin.serverAddress=127.0.0.1",
                        "admin.serverPort=%d" % self.admin_port]

    def command(self, cfg_path):
        cmd = super().command(cfg_path)
        cmd[cmd.index("-cp") + 1] = admin_zookeeper_classpath()
        return cmd


class AdminQuorumd(Quorumd):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.admin_port = free_port()
        self.metrics_port = free_port()
        self.extra_cfg.update({
            "admin.enableServer": "true", "admin.serverAddress": "127.0.0.1",
            "admin.serverPort": str(self.admin_port),
            "metricsProvider.className": PROMETHEUS_PROVIDER,
            "metricsProvider.httpHost": "127.0.0.1",
            "metricsProvider.httpPort": str(self.metrics_port)})


def http_get(port, path, method="GET", data=None, timeout=10):
    """(status, content type, body) of one request."""
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=data,
                                 method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


def raw_http(port, data, timeout=10):
    """Sends bytes as they are; returns what comes back until close."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except OSError:
            pass  # the server may close before taking everything: fine
        out = b""
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                out += b
        except (ConnectionResetError, socket.timeout):
            pass
        return out


def command_list(port):
    status, _, body = http_get(port, "/commands")
    assert status == 200, status
    return re.findall(r'<a href="/commands/([a-z_]+)">', body.decode())


def mntr(port):
    out = {}
    for line in four_letter(port, "mntr").splitlines():
        k, _, v = line.partition("\t")
        out[k] = v
    return out


SUMMARY = re.compile(r"^(?:zk_)?(avg|min|max|cnt|sum|p50|p95|p99|p999)_(.+)$")
# ZooKeeper's per-namespace sets: NAMESPACE_read_per_namespace; the
# namespace is data (the test writes under /load and /adm-e)
PER_NAMESPACE = re.compile(r"^(zk_)?(avg|min|max|cnt|sum)_.+_((read|write)_per_namespace)$")


# and the leader's per-follower sets: ID_learner_handler_qp_size
PER_LEARNER = re.compile(r"^(.*_)\d+(_learner_handler_qp_.*|_ack_latency)$")
# The leader's ack_latency set times one proposal in 1000
# (ackLoggingFrequency), so whether it shows depends on the run's count.
ACK_LATENCY = re.compile(r"^zk_(avg|min|max|cnt|sum|p50|p95|p99|p999)_(\d+)_ack_latency$")


def normal(key):
    """A key with the data in it (a namespace, a follower's id) replaced."""
    m = PER_NAMESPACE.match(key)
    if m:
        return "%s%s_NS_%s" % (m.group(1) or "", m.group(2), m.group(3))
    m = PER_LEARNER.match(key)
    return "%sID%s" % (m.group(1), m.group(2)) if m else key


def base_name(key):
    m = SUMMARY.match(key)
    return m.group(2) if m else key[3:] if key.startswith("zk_") else key


class Both:
    def __init__(self):
        self.zk = AdminZooKeeper()
        self.q = AdminQuorumd()


def load(server, seconds, stop=None):
    """Writes and reads for a while through one kazoo session; returns the
    number of creates."""
    zk = kazoo_client(server)
    n = 0
    try:
        zk.ensure_path("/load")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not (stop and stop.is_set()):
            zk.create("/load/n", b"x" * 64, sequence=True)
            zk.get_children("/load")[:1]
            n += 1
        zk.delete("/load", recursive=True)
    finally:
        close_clients(zk)
    return n


# ---- the tests ---------------------------------------------------------------

def test_mntr_keys(both):
    load(both.zk, 0.5)
    load(both.q, 0.5)
    zm, qm = mntr(both.zk.port), mntr(both.q.port)
    qkeys = {normal(k) for k in qm}
    missing = sorted(k for k in zm if normal(k) not in qkeys and base_name(k) not in NOT_HERE)
    assert not missing, "%d of ZooKeeper's mntr keys missing from quorumd's: %s" % (
        len(missing), " ".join(missing))
    zkeys = {normal(k) for k in zm}
    stray = sorted(k for k in qm if normal(k) not in zkeys and not k.startswith("quorum_"))
    assert not stray, "quorumd's mntr keys neither ZooKeeper's nor quorum_: %s" % stray
    number = re.compile(r"^-?\d+(\.\d+)?$")
    for k, v in zm.items():
        if k in qm and number.match(v):
            assert number.match(qm[k]), "mntr %s: zookeeper %r, quorumd %r" % (k, v, qm[k])
    for k in ("zk_znode_count", "zk_ephemerals_count", "zk_watch_count", "zk_server_state"):
        assert zm[k] == qm[k], "mntr %s: zookeeper %r, quorumd %r" % (k, zm[k], qm[k])
    # the loop's turns were timed: every request of the load took one or more
    turns = int(qm["quorum_loop_busy_time_cnt"])
    assert turns > 0 and float(qm["quorum_loop_busy_time_max"]) >= 0, qm
    print("    mntr: zookeeper %d keys, quorumd %d (%d of ours); %d without a meaning here"
          % (len(zm), len(qm), sum(k.startswith("quorum_") for k in qm),
             sum(1 for k in zm if k not in qm)), flush=True)


# maps keyed by data: their keys become *
DATA_KEYED = ("expiry_time_to_session_ids", "session_id_to_ephemeral_paths",
              "session_id_to_watched_paths", "path_to_session_ids")


def json_keys(v, prefix=""):
    """Every key path of a JSON value, lists entered through their first
    element (each element has the same shape), the keys of maps keyed by
    data as *."""
    out = set()
    if isinstance(v, dict):
        data_keyed = prefix.rstrip(".").split(".")[-1] in DATA_KEYED
        for k, x in v.items():
            k = "*" if data_keyed else normal(k)
            out.add(prefix + k)
            out |= json_keys(x, prefix + k + ".")
    elif isinstance(v, list) and v:
        out |= json_keys(v[0], prefix + "[].")
    return out


# JSON keys that follow from things quorumd does not have (see NOT_HERE),
# by command.
# Commands of which only some keys have a meaning here: those compared.
JSON_ONLY = {
    # the JVM's own properties are not quorumd's; the machine's and the
    # process's are the same facts
    "system_properties": ("os.", "user.", "file.separator", "line.separator",
                          "path.separator", "command", "error"),
}

JSON_NOT_HERE = {
    "hash": {"digests.[].digest", "digests.[].digest_version", "digests.[].zxid"},
    "server_stats": {"server_stats.non_mtlslocal_conn_count",
                     "server_stats.non_mtlsremote_conn_count"},
    "stats": {"server_stats.non_mtlslocal_conn_count",
              "server_stats.non_mtlsremote_conn_count"},
}


def test_admin_commands(both):
    zc, qc = command_list(both.zk.admin_port), command_list(both.q.admin_port)
    assert zc, "ZooKeeper's AdminServer lists no commands"
    missing = [c for c in zc if c not in qc]
    assert not missing, "commands ZooKeeper has and quorumd lacks: %s" % missing
    # a session with a watch and an ephemeral, so cons/wchc/dump have rows
    clients = [kazoo_client(both.zk), kazoo_client(both.q)]
    try:
        for c in clients:
            c.create("/adm-e", b"e", ephemeral=True)
            c.get("/adm-e", watch=lambda e: None)
        problems = []
        for name in zc:
            zs, zt, zb = http_get(both.zk.admin_port, "/commands/" + name)
            qs, qt, qb = http_get(both.q.admin_port, "/commands/" + name)
            if zs != qs:
                problems.append("%s: status zookeeper %d, quorumd %d" % (name, zs, qs))
                continue
            if "json" not in zt:
                continue
            if "json" not in qt:
                problems.append("%s: quorumd's content type %r" % (name, qt))
                continue
            zj, qj = json.loads(zb), json.loads(qb)
            zk_keys, q_keys = json_keys(zj), json_keys(qj)
            if name in JSON_ONLY:
                zk_keys = {k for k in zk_keys if k.startswith(JSON_ONLY[name])}
            lack = zk_keys - q_keys - JSON_NOT_HERE.get(name, set())
            if name == "monitor":  # mntr's figures: NOT_HERE applies
                lack = {k for k in lack if base_name(k) not in NOT_HERE}
            if lack:
                problems.append("%s: quorumd lacks %s" % (name, sorted(lack)))
            extra = {k for k in q_keys - zk_keys if not k.startswith("quorum_")}
            if extra:
                problems.append("%s: keys ZooKeeper does not have: %s" % (name, sorted(extra)))
            if qj.get("error") is not None and zj.get("error") is None:
                problems.append("%s: quorumd's error %r" % (name, qj["error"]))
        assert not problems, "\n  ".join(problems)
    finally:
        close_clients(*clients)
    for srv in (both.zk, both.q):
        status, _, body = http_get(srv.admin_port, "/commands/no_such_command")
        assert status == 404 or b"Unknown command" in body, (srv.name, status, body[:200])
    print("    %d commands compared" % len(zc), flush=True)


def test_admin_bad_input(both):
    q = both.q
    # a body far over any limit: refused, not read into memory
    big = b"x" * (8 << 20)
    out = raw_http(q.admin_port, b"POST /commands/ruok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                   b"Content-Length: %d\r\n\r\n" % len(big) + big)
    assert out == b"" or re.match(rb"HTTP/1\.[01] 4\d\d", out), out[:200]
    # garbage and a header section without end
    for data in (b"\x00\x01\x02 garbage\r\n\r\n", b"GET /commands/ruok HTTP/1.1\r\nConnection: close\r\n" +
                 b"X-Long: " + b"a" * (1 << 20) + b"\r\n\r\n",
                 b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"):
        out = raw_http(q.admin_port, data, timeout=3)  # garbage waits for more: idle
        assert out == b"" or re.match(rb"HTTP/1\.[01] [45]\d\d", out), out[:200]
    for port in (q.admin_port, q.metrics_port):
        out = raw_http(port, b"GET /commands/../../etc/passwd HTTP/1.0\r\n\r\n")
        assert b"root:" not in out, out[:200]
    status, _, body = http_get(q.admin_port, "/commands/ruok")
    assert status == 200 and json.loads(body)["error"] is None, (status, body)
    assert four_letter(q.port, "ruok") == "imok"


def scrape(port):
    from prometheus_client.parser import text_string_to_metric_families
    status, ctype, body = http_get(port, "/metrics")
    assert status == 200, status
    assert ctype.startswith("text/plain"), ctype
    out = {}
    for fam in text_string_to_metric_families(body.decode()):
        for s in fam.samples:
            out[s.name] = (fam.type, s.value)
    return out


def test_prometheus_during_load(both):
    q = both.q
    before = scrape(q.metrics_port)
    stop = threading.Event()
    done = []
    t = threading.Thread(target=lambda: done.append(load(q, 3.0, stop)))
    t.start()
    try:
        time.sleep(1.0)
        during = scrape(q.metrics_port)
    finally:
        stop.set()
        t.join(30)
    after = scrape(q.metrics_port)
    assert done and done[0] > 0, "the load made no writes"
    for name, (typ, v) in after.items():
        if typ == "counter" or name.endswith(("_count", "_sum")) and typ == "summary":
            b = before.get(name, (typ, 0))[1]
            d = during.get(name, (typ, b))[1]
            assert b <= d <= v, "%s went back: %s, %s, %s" % (name, b, d, v)
    for name in ("packets_received", "fsynctime_count", "sync_processor_batch_size_count",
                 "quorum_txns_logged_total", "updatelatency_count", "readlatency_count"):
        assert name in after, "/metrics lacks %s (has %s)" % (name, sorted(after)[:20])
        assert after[name][1] > before[name][1], "%s did not move: %s -> %s" % (
            name, before[name][1], after[name][1])
    m = mntr(q.port)
    assert int(m["zk_znode_count"]) == int(scrape(q.metrics_port)["znode_count"][1])
    print("    %d creates; %d samples; fsyncs %d -> %d" % (
        done[0], len(after), before["fsynctime_count"][1], after["fsynctime_count"][1]),
        flush=True)


def ensemble_mntr(kind):
    """mntr of the leader and of a follower of a fresh three-member
    ensemble, after writes through the follower; and the follower's mntr
    after its leader was killed and it followed another one."""
    with ensemble_for(kind) as ens:
        leader = ens.wait_serving(timeout=90)
        follower = next(m for m in ens.members if m is not leader)
        load(follower, 1.0)
        out = {"leader": mntr(leader.port), "follower": mntr(follower.port)}
        leader.kill()
        ens.wait_serving(timeout=60)
        out["after"] = mntr(follower.port)
        return out


def test_ensemble_mntr(both):
    """Role by role against a ZooKeeper ensemble (the standalone pair is
    not used)."""
    zk, q = ensemble_mntr("zookeeper"), ensemble_mntr("quorumd")
    problems = []
    for kind, m in (("zookeeper", zk["leader"]), ("quorumd", q["leader"])):
        # Every proposal is acked by a quorum before its commit, and those
        # acks are timed: a run past 1000 proposals shows two members or more.
        timed = {ACK_LATENCY.match(k).group(2) for k in m if ACK_LATENCY.match(k)}
        if int(m["zk_proposal_count"]) >= 1000 and len(timed) < 2:
            problems.append("%s's leader: %s proposals, ack_latency of members %s" % (
                kind, m["zk_proposal_count"], sorted(timed)))
        print("    %s's leader: %s proposals, ack_latency of members %s" % (
            kind, m["zk_proposal_count"], sorted(timed)), flush=True)
    for role in ("leader", "follower"):
        zm, qm = zk[role], q[role]
        zm = {k: v for k, v in zm.items() if not ACK_LATENCY.match(k)}
        qm = {k: v for k, v in qm.items() if not ACK_LATENCY.match(k)}
        qkeys, zkeys = {normal(k) for k in qm}, {normal(k) for k in zm}
        lack = sorted(k for k in zm if normal(k) not in qkeys and base_name(k) not in NOT_HERE)
        if lack:
            problems.append("%s lacks %s" % (role, lack))
        extra = sorted(k for k in qm if normal(k) not in zkeys and not k.startswith("quorum_"))
        if extra:
            problems.append("%s has what ZooKeeper's %s has not: %s" % (role, role, extra))
        for k in ("zk_server_state", "zk_peer_state", "zk_quorum_size"):
            if zm.get(k) != qm.get(k):
                problems.append("%s %s: zookeeper %r, quorumd %r" % (role, k, zm.get(k),
                                                                       qm.get(k)))
    assert not problems, "\n  ".join(problems)
    # the ZAB figures count what happened
    ld, fo, af = q["leader"], q["follower"], q["after"]

    def n(m, k):
        return float(m[k])
    for k in ("zk_cnt_proposal_latency", "zk_cnt_quorum_ack_latency", "zk_proposal_count",
              "zk_diff_count", "zk_commit_count", "zk_cnt_election_time"):
        assert n(ld, k) > 0, "leader %s: %s" % (k, ld[k])
    for k in ("zk_learner_proposal_received_count", "zk_learner_commit_received_count",
              "zk_cnt_propagation_latency", "zk_cnt_proposal_ack_creation_latency",
              "zk_cnt_follower_sync_time", "zk_cnt_election_time", "zk_commit_count",
              "zk_cnt_updatelatency"):
        assert n(fo, k) > 0, "follower %s: %s" % (k, fo[k])
    # The kill costs the follower at least one election (more if the first
    # candidate it joins fails), each ended in a role, and at least one
    # time without service.
    looked = n(af, "zk_looking_count") - n(fo, "zk_looking_count")
    assert looked >= 1, (fo["zk_looking_count"], af["zk_looking_count"])
    assert n(af, "zk_cnt_election_time") - n(fo, "zk_cnt_election_time") == looked, (
        "elections entered %d, ended %s" % (looked, af["zk_cnt_election_time"]))
    assert n(af, "zk_cnt_unavailable_time") >= n(fo, "zk_cnt_unavailable_time") + 1
    print("    leader: %s proposals, quorum acks p99 %s ms; follower: %s proposals received,"
          " election %s ms, sync %s ms" % (ld["zk_proposal_count"], ld["zk_p99_quorum_ack_latency"],
                                           fo["zk_learner_proposal_received_count"],
                                           fo["zk_max_election_time"],
                                           fo["zk_max_follower_sync_time"]), flush=True)


def http_call(port, path, method="GET", data=None, auth=None, timeout=20):
    """(status, headers, body) of one request, Authorization: digest auth."""
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=data,
                                 method=method)
    if auth:
        req.add_header("Authorization", "digest " + auth)
    if data is not None:
        req.add_header("Content-Type", "application/octet-stream")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def test_snapshot_and_restore(both):
    """ZooKeeper 3.9's snapshot and restore (Debian's 3.8 has neither, so
    quorumd alone): only a client holding ALL on / may call them, each at
    most once per interval; a snapshot streamed out and restored brings the
    tree back as it was, also across a restart, and a corrupt or oversized
    body changes nothing."""
    from kazoo.security import make_digest_acl
    q = AdminQuorumd()
    q.extra_cfg.update({"admin.snapshot.intervalInMS": "0", "admin.restore.intervalInMS": "0",
                        "admin.restore.maxBytes": str(4 << 20)})
    with running(q):
        k = kazoo_client(q)
        try:
            k.add_auth("digest", "ops:secret")
            for i in range(50):
                k.create("/keep/n%02d" % i, b"v%d" % i, makepath=True)
            k.set_acls("/", [make_digest_acl("ops", "secret", all=True),
                             make_digest_acl("ro", "ro", read=True)])
            # who may
            st, _, body = http_call(q.admin_port, "/commands/snapshot?streaming=true")
            assert st == 401 and json.loads(body)["error"], (st, body)
            st, _, _ = http_call(q.admin_port, "/commands/snapshot?streaming=true",
                                 auth="ops:wrong")
            assert st == 403, st
            st, _, _ = http_call(q.admin_port, "/commands/snapshot?streaming=true", auth="ro:ro")
            assert st == 403, "READ on / is not enough: %d" % st
            st, hdr, snap = http_call(q.admin_port, "/commands/snapshot?streaming=true",
                                      auth="ops:secret")
            assert st == 200, (st, snap[:200])
            assert int(hdr["snapshot_size"]) == len(snap) > 0, (hdr["snapshot_size"], len(snap))
            taken = int(hdr["last_zxid"], 16)
            st, _, body = http_call(q.admin_port, "/commands/snapshot", auth="ops:secret")
            j = json.loads(body)
            assert st == 200 and j["error"] is None and int(j["last_zxid"], 16) == taken, body
            # changes after the snapshot
            k.delete("/keep/n00")
            k.create("/later", b"x")
            # bad bodies change nothing
            bad = bytearray(snap)
            bad[len(bad) // 2] ^= 0xFF
            st, _, body = http_call(q.admin_port, "/commands/restore", "POST", bytes(bad),
                                    auth="ops:secret")
            assert st == 400 and b"corrupt" in body, (st, body)
            st, _, _ = http_call(q.admin_port, "/commands/restore", "POST", b"x" * 64,
                                 auth="ops:secret")
            assert st == 400, st
            out = raw_http(q.admin_port, b"POST /commands/restore HTTP/1.1\r\nHost: x\r\n"
                           b"Connection: close\r\nAuthorization: digest ops:secret\r\n"
                           b"Content-Length: %d\r\n\r\n" % (64 << 20), timeout=5)
            assert re.match(rb"HTTP/1\.[01] 413", out), out[:100]
            # an unauthenticated client is refused before it may send its body
            out = raw_http(q.admin_port, b"POST /commands/restore HTTP/1.1\r\nHost: x\r\n"
                           b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(snap),
                           timeout=5)
            assert re.match(rb"HTTP/1\.[01] 401", out), out[:100]
            st, _, _ = http_call(q.admin_port, "/commands/restore", auth="ops:secret")
            assert st == 405, "restore by GET: %d" % st
            assert k.exists("/later") and not k.exists("/keep/n00"), "a refused restore changed"
        finally:
            close_clients(k)
        # The snapshot written to disk just before may still be in progress
        # (a slow build): the server then answers 503 and takes it later.
        deadline = time.monotonic() + 20
        while True:
            st, _, body = http_call(q.admin_port, "/commands/restore", "POST", snap,
                                    auth="ops:secret")
            if st != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        j = json.loads(body)
        assert st == 200 and j["error"] is None and int(j["last_zxid"], 16) == taken, (st, body)

        def check(where):
            c = kazoo_client(q)
            try:
                c.add_auth("digest", "ops:secret")
                assert c.exists("/later") is None, "%s: a node made after the snapshot" % where
                assert c.get("/keep/n00")[0] == b"v0", where
                assert len(c.get_children("/keep")) == 50, where
                c.create("/after-restore", b"")  # writes go on
                c.delete("/after-restore")
            finally:
                close_clients(c)
        check("after the restore")
        q.stop()
        q.start()
        check("after a restart")
    # the default interval (5 min) holds back a second snapshot; the root of
    # both.q is open to all, as ZooKeeper's is by default
    st, _, _ = http_call(both.q.admin_port, "/commands/snapshot")
    assert st == 200, st
    st, _, body = http_call(both.q.admin_port, "/commands/snapshot")
    assert st == 429 and b"intervalInMS" in body, (st, body)
    print("    snapshot 0x%x of %d bytes restored; refusals 401/403/400/413/405/429" % (
        taken, len(snap)), flush=True)


if __name__ == "__main__":
    both = Both()
    with running(both.zk, both.q):
        run_tests([test_mntr_keys, test_admin_commands, test_admin_bad_input,
                   test_prometheus_during_load, test_snapshot_and_restore,
                   test_ensemble_mntr], both)
