"""Dynamic reconfiguration (argv[1]: quorumd or Apache ZooKeeper, with the
same expectations): reconfigEnabled=true, an ensemble of three voters and
two more servers started as ZooKeeper's administrator's guide says a
server to be added starts (its zoo.cfg lists the ensemble and itself).

The superuser's kazoo reconfig() adds the two while a writer works, then
removes two of the first three (the leader among them, if it is), and
the writer's every acknowledged write must be on every member; the
leader of the new membership is killed and the writes go on; a member
restarted comes back with the membership it saved (zoo.cfg's
dynamicConfigFile); zkCli's config and reconfig remove a follower and add
it back under a writer; a reconfig giving the whole new membership
(non-incremental) leaves a follower out and takes it back; a follower
down through two changes comes back, learns and saves the membership in
force. Refusals: a client that is not the superuser
(NoAuth), a spec that does not parse or no voter left (BadArguments), a
stale expected version (BadVersion), new servers that are not running
(NewConfigNoQuorum), and with reconfigEnabled=false (ReconfigDisabled, at
the wire: kazoo does not know that code)."""
import os
import sys
import time

from harness import ensemble_for, four_letter, run_tests, wait_until
import rawzk
from test_ensemble import SESSION_TIMEOUT, Writer, call, client, close

from kazoo.exceptions import BadArgumentsError, BadVersionError, NewConfigNoQuorumError
from kazoo.exceptions import ConnectionLoss, NoAuthError

SUPER = "super:D/InIHSb7yEEbrWz8b9l71RjZJU="  # the digest id of super:test
FIRST = 3  # members 1..3 form the ensemble; 4 and 5 are added


def spec(m):
    return "server.%d=%s:%d:%d:participant;%s:%d" % (m.myid, m.host, m.peer_port,
                                                     m.election_port, m.host, m.port)


def members_of(text):
    """{id: line} and the version of /zookeeper/config's text."""
    lines = text.decode().splitlines()
    version = [line for line in lines if line.startswith("version=")]
    servers = {int(line.split("=")[0][7:]): line for line in lines if line.startswith("server.")}
    return servers, (version[0][8:] if version else None)


def superuser(members):
    hosts = ",".join(m.hosts for m in members)
    from harness import FAILOVER_RETRY, kazoo_client

    class Target:
        pass
    t = Target()
    t.hosts = hosts
    return kazoo_client(t, timeout=SESSION_TIMEOUT, start_timeout=20,
                        connection_retry=dict(FAILOVER_RETRY),
                        auth_data=[("digest", "super:test")])


def config_on(m):
    c = client(m)
    try:
        call(c.sync_async("/zookeeper/config"))
        return call(c.get_async("/zookeeper/config"))[0]
    finally:
        close(c)


def wait_config(members, text, what):
    """Every member's /zookeeper/config reads text (after a sync)."""
    def same():
        for m in members:
            try:
                if config_on(m) != text:
                    return False
            except Exception:
                return False
        return True
    wait_until(same, 60, "every member to hold the %s membership" % what, interval=0.3)


def wait_modes(members, want, timeout=60):
    def ok():
        modes = [m.mode() for m in members]
        return sorted(x for x in modes if x) == sorted(want)
    wait_until(ok, timeout, "modes %s of %r" % (want, members), interval=0.2)


def relaunch(m):
    """Starts m again with the zoo.cfg it has now (a reconfig rewrote it),
    as an operator's restart would; launch() would write the test's."""
    write = m.write_config
    m.write_config = lambda: os.path.join(m.dir, "zoo.cfg")
    try:
        m.start()
    finally:
        m.write_config = write


def leave(staying, leaving):
    """The superuser's reconfig that removes `leaving`, through a client of
    the members that stay. A leader that leaves hands over to a new one,
    and a member's clients may lose their connection then (on ZooKeeper
    too): the reply can be lost although the change was made. So on
    ConnectionLoss the membership is read again and the change retried
    only if it was not made. Returns the new membership's text."""
    ids = [m.myid for m in leaving]
    deadline = time.monotonic() + 60
    while True:
        su = superuser(staying)
        try:
            try:
                return su.reconfig(joining=None, leaving=",".join(map(str, ids)),
                                   new_members=None)[0]
            except ConnectionLoss:
                if time.monotonic() > deadline:
                    raise
            call(su.sync_async("/zookeeper/config"))
            text = call(su.get_async("/zookeeper/config"))[0]
            if not set(ids) & set(members_of(text)[0]):
                return text
        finally:
            close(su)


def test_refusals(ens):
    first = ens.members[:FIRST]
    su = superuser(first)
    plain = client(first[0])
    try:
        before, _ = call(su.get_async("/zookeeper/config"))
        servers, version = members_of(before)
        assert sorted(servers) == [1, 2, 3], before
        try:
            plain.reconfig(joining=None, leaving="3", new_members=None)
            raise AssertionError("a client that is not the superuser reconfigured")
        except NoAuthError:
            pass
        for args, what in (
                (dict(joining="server.9=nonsense", leaving=None, new_members=None),
                 "a spec that does not parse"),
                (dict(joining=None, leaving="1,2,3", new_members=None), "no voter left"),
                (dict(joining=None, leaving=None, new_members="server.1=127.0.0.1:1"),
                 "new members that do not parse")):
            try:
                su.reconfig(**args)
                raise AssertionError("%s: accepted" % what)
            except BadArgumentsError:
                pass
        try:
            su.reconfig(joining=None, leaving="2", new_members=None,
                        from_config=int(version, 16) + 7)
            raise AssertionError("a stale expected version: accepted")
        except BadVersionError:
            pass
        # Three servers that are not running: no quorum of {1,2,3,7,8,9}
        # (four) is synced with the leader.
        try:
            su.reconfig(joining="server.7=127.0.0.1:7:8;9,server.8=127.0.0.1:1:2;3,"
                        "server.9=127.0.0.1:4:5;6", leaving=None, new_members=None)
            raise AssertionError("a membership whose quorum is not running: accepted")
        except NewConfigNoQuorumError:
            pass
        after, _ = call(su.get_async("/zookeeper/config"))
        assert after == before, "a refused reconfig changed the membership: %r" % after
    finally:
        close(su, plain)


def test_add_and_remove_under_writes(ens):
    first = ens.members[:FIRST]
    joiners = ens.members[FIRST:]
    for m in joiners:
        m.launch()
    for m in joiners:
        m.wait_started(ens.start_timeout)
    w = Writer(ens, "/rc-w")
    su = superuser(ens.members)
    try:
        call(su.create_async("/rc-w"))
        w.start()
        wait_until(lambda: len(w.ack_times) >= 100 or not w.is_alive(), 30, "100 writes")
        t0 = time.monotonic()
        text, _ = su.reconfig(joining=",".join(spec(m) for m in joiners), leaving=None,
                              new_members=None)
        servers, version = members_of(text)
        print("    5 voters after %.2fs (version %s)" % (time.monotonic() - t0, version),
              flush=True)
        assert sorted(servers) == [1, 2, 3, 4, 5], text
        wait_config(ens.members, text, "five-voter")
        wait_modes(ens.members, ["leader"] + ["follower"] * 4)
        n = len(w.ack_times)
        wait_until(lambda: len(w.ack_times) >= n + 100 or not w.is_alive(), 30,
                   "100 writes with five voters")

        # Two of the first three leave; the leader among them if it is.
        leader = next(m for m in ens.members if m.mode() == "leader")
        leaving = [leader] if leader in first else []
        leaving += [m for m in first if m not in leaving][:2 - len(leaving)]
        staying = [m for m in ens.members if m not in leaving]
        t0 = time.monotonic()
        text = leave(staying, leaving)
        servers, version = members_of(text)
        print("    %s left after %.2fs (version %s)" % (
            [m.myid for m in leaving], time.monotonic() - t0, version), flush=True)
        assert sorted(servers) == sorted(m.myid for m in staying), text
        wait_config(staying, text, "three-voter")
        wait_modes(staying, ["leader", "follower", "follower"])
        n = len(w.ack_times)
        wait_until(lambda: len(w.ack_times) >= n + 100 or not w.is_alive(), 30,
                   "100 writes after two left")
        for m in leaving:
            m.shutdown()

        # The new membership survives its leader's death and a restart.
        leader = next(m for m in staying if m.mode() == "leader")
        leader.kill()
        t0 = time.monotonic()
        wait_modes([m for m in staying if m is not leader], ["leader", "follower"])
        print("    a leader of the new membership after %.2fs" % (time.monotonic() - t0),
              flush=True)
        n = len(w.ack_times)
        wait_until(lambda: len(w.ack_times) >= n + 50 or not w.is_alive(), 30,
                   "50 writes after the leader died")
        relaunch(leader)
        wait_modes(staying, ["leader", "follower", "follower"])
        cfg = open(os.path.join(leader.dir, "zoo.cfg")).read()
        assert "dynamicConfigFile=" in cfg and "\nserver." not in cfg, cfg
        assert config_on(leader) == text, "%r restarted with %r" % (leader, config_on(leader))
        w.stop()
        w.check(staying)
        print("    %d creates and %d sets acknowledged, all on every member"
              % (len(w.created), len(w.sets)), flush=True)
    finally:
        if w.is_alive():
            w.halt.set()
        close(su)


def test_zkcli(ens):
    """zkCli's config and reconfig commands, as an operator types them,
    under a writer: a follower removed and added back, each change
    committed and shown, every acknowledged write on every member."""
    from test_zkcli import run_cli
    live = [m for m in ens.members if m.alive]
    leader = next(m for m in live if m.mode() == "leader")
    f = next(m for m in live if m is not leader)
    others = [m for m in live if m is not f]

    class Hosts:
        pass
    writing = Hosts()
    writing.hosts = ",".join(m.hosts for m in others)
    w = Writer(writing, "/rc-cli")
    call(w.zk.create_async("/rc-cli"))
    w.start()
    wait_until(lambda: len(w.ack_times) >= 50 or not w.is_alive(), 30, "50 writes")
    script = "\n".join(["addauth digest super:test", "config",
                        "reconfig -remove %d" % f.myid, "config",
                        "reconfig -add %s" % spec(f), "config", "quit", ""])

    class One:
        pass
    target = One()
    target.hosts, target.dir = leader.hosts, leader.dir
    rc, out = run_cli(target, stdin=script, timeout=120)
    assert rc == 0, "zkCli exited %d:\n%s" % (rc, out)
    blocks = out.split("Committed new configuration:")
    assert len(blocks) == 3, "two reconfigs committed, in:\n%s" % out
    mine = "server.%d=" % f.myid
    assert mine not in blocks[1].split("version=")[0], blocks[1]
    assert spec(f) in blocks[2], blocks[2]
    wait_config(live, config_on(leader), "restored")
    wait_modes(live, ["leader"] + ["follower"] * (len(live) - 1))
    n = len(w.ack_times)
    wait_until(lambda: len(w.ack_times) >= n + 50 or not w.is_alive(), 30,
               "50 writes after zkCli's changes")
    w.stop()
    w.check(live)
    print("    zkCli: %d creates and %d sets acknowledged meanwhile, all on every member"
          % (len(w.created), len(w.sets)), flush=True)


def test_non_incremental(ens):
    """reconfig with the whole new membership (kazoo's new_members): a
    follower left out, then every member again."""
    live = [m for m in ens.members if m.alive]
    leader = next(m for m in live if m.mode() == "leader")
    f = next(m for m in live if m is not leader)
    su = superuser([m for m in live if m is not f])
    try:
        text, _ = su.reconfig(joining=None, leaving=None,
                              new_members=",".join(spec(m) for m in live if m is not f))
        assert sorted(members_of(text)[0]) == sorted(m.myid for m in live if m is not f), text
        wait_config([m for m in live if m is not f], text, "smaller")
        text, _ = su.reconfig(joining=None, leaving=None,
                              new_members=",".join(spec(m) for m in live))
        assert sorted(members_of(text)[0]) == sorted(m.myid for m in live), text
        wait_config(live, text, "whole")
        wait_modes(live, ["leader"] + ["follower"] * (len(live) - 1))
    finally:
        close(su)


def test_member_down_meanwhile(ens):
    """A follower down while the membership changes twice (a server that
    is not running added as an observer, then removed) comes back on its
    old zoo.cfg, learns the membership in force, and saves it."""
    live = [m for m in ens.members if m.alive]
    gone = next(m for m in ens.members if not m.alive)
    leader = next(m for m in live if m.mode() == "leader")
    down = next(m for m in live if m is not leader)
    down.kill()
    su = superuser([m for m in live if m is not down])
    try:
        su.reconfig(joining=spec(gone).replace(":participant;", ":observer;"), leaving=None,
                    new_members=None)
        text, _ = su.reconfig(joining=None, leaving=str(gone.myid), new_members=None)
    finally:
        close(su)
    version = members_of(text)[1]
    relaunch(down)
    wait_config(live, text, "latest")
    wait_modes(live, ["leader"] + ["follower"] * (len(live) - 1))
    cfg = open(os.path.join(down.dir, "zoo.cfg")).read()
    assert "zoo.cfg.dynamic.%s\n" % version in cfg, "%r saved no membership %s:\n%s" % (
        down, version, cfg)


def test_disabled(ens_with_reconfig):
    """reconfigEnabled=false (ZooKeeper's default): ReconfigDisabled (-123)."""
    kind = ens_with_reconfig.kind
    with ensemble_for(kind, 3, extra_cfg={"DigestAuthenticationProvider.superDigest": SUPER,
                                          "standaloneEnabled": "false"}) as ens:
        ens.wait_serving()
        m = ens.members[0]
        z = rawzk.RawZK(m.port)
        try:
            assert z.auth("digest", b"super:test") == (0, None)
            err, _ = z.reconfig(None, "3", None, -1)
            assert err == -123, "reconfig with reconfigEnabled=false: %r" % (err,)
        finally:
            z.close()


def main():
    kind = sys.argv[1] if len(sys.argv) > 1 else "quorumd"
    cfg = {"reconfigEnabled": "true", "standaloneEnabled": "false",
           "DigestAuthenticationProvider.superDigest": SUPER}
    ens = ensemble_for(kind, FIRST + 2, extra_cfg=cfg)  # started here, not by `with`
    try:
        # Members 1..3 know each other; 4 and 5 know those and themselves.
        for m in ens.members:
            lines = ens.server_lines()

            def own(lines=lines, m=m):
                return [line for i, line in enumerate(lines)
                        if i < FIRST or i + 1 == m.myid]
            m.server_lines = own
        for m in ens.members[:FIRST]:
            m.launch()
        for m in ens.members[:FIRST]:
            m.wait_started(ens.start_timeout)
        run_tests([test_refusals, test_add_and_remove_under_writes, test_zkcli,
                   test_non_incremental, test_member_down_meanwhile, test_disabled], ens,
                  on_failure=ens.dump_logs)
    finally:
        ens.cleanup()


if __name__ == "__main__":
    main()
