// Apache Curator's recipes against a running ensemble (quorumd or Apache
// ZooKeeper): every recipe runs with several CuratorFramework clients, each
// connected to a different member (a connect string of that member alone),
// plus one whose connect string lists every member, on threads of their own
// so that their requests really interleave on the leader.
//
//   java [-Dscale=N] -cp <curator jars>:. CuratorRecipes HOST:PORT,HOST:PORT,... [recipe...]
//
// Prints one line per recipe and the closing "N passed, N failed"; exits 1
// if any failed. Every wait is bounded; a recipe that does not finish within
// RECIPE_BOUND_S fails (its threads' stacks are printed) and the next runs.
// test_curator.py compiles this against Debian's libcurator-*-java and runs it.

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.Callable;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.api.CuratorEventType;
import org.apache.curator.framework.recipes.atomic.AtomicValue;
import org.apache.curator.framework.recipes.atomic.DistributedAtomicLong;
import org.apache.curator.framework.recipes.barriers.DistributedBarrier;
import org.apache.curator.framework.recipes.barriers.DistributedDoubleBarrier;
import org.apache.curator.framework.recipes.cache.ChildData;
import org.apache.curator.framework.recipes.cache.CuratorCache;
import org.apache.curator.framework.recipes.cache.CuratorCacheListener;
import org.apache.curator.framework.recipes.cache.TreeCache;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.leader.LeaderSelector;
import org.apache.curator.framework.recipes.leader.LeaderSelectorListenerAdapter;
import org.apache.curator.framework.recipes.leader.Participant;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.recipes.locks.InterProcessReadWriteLock;
import org.apache.curator.framework.recipes.locks.InterProcessSemaphoreV2;
import org.apache.curator.framework.recipes.locks.Lease;
import org.apache.curator.framework.recipes.nodes.PersistentNode;
import org.apache.curator.framework.recipes.nodes.PersistentTtlNode;
import org.apache.curator.framework.state.ConnectionState;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.curator.retry.RetryNTimes;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.data.Stat;

public class CuratorRecipes {
    // -Dscale=N multiplies the rounds of the contended recipes, for a longer
    // soak by hand; the suite runs with 1
    static final int SCALE = Math.max(1, Integer.getInteger("scale", 1));
    static final long RECIPE_BOUND_S = 60L * SCALE;   // one recipe, start to end
    static final long WAIT_S = 30;           // any single wait inside a recipe

    static String[] members;                 // one connect string per member
    static String all;                       // every member

    // ---- clients -------------------------------------------------------------

    /** A started client and what happened to its connection. */
    static final class Client implements AutoCloseable {
        final String name;
        final String connect;
        final CuratorFramework fw;
        final List<ConnectionState> states = new CopyOnWriteArrayList<>();

        Client(String name, String connect) throws Exception {
            this.name = name;
            this.connect = connect;
            fw = CuratorFrameworkFactory.builder()
                    .connectString(connect)
                    .sessionTimeoutMs(30000)
                    .connectionTimeoutMs(15000)
                    .retryPolicy(new ExponentialBackoffRetry(100, 8, 2000))
                    .build();
            fw.getConnectionStateListenable().addListener((c, s) -> states.add(s));
            fw.start();
            if (!fw.blockUntilConnected((int) WAIT_S, TimeUnit.SECONDS)) {
                fw.close();
                throw new AssertionError(name + " did not connect to " + connect);
            }
        }

        /** Connection trouble seen so far (anything past the first CONNECTED). */
        String trouble() {
            List<ConnectionState> s = new ArrayList<>(states);
            if (!s.isEmpty() && s.get(0) == ConnectionState.CONNECTED)
                s.remove(0);
            return s.isEmpty() ? "" : name + " connection states " + s;
        }

        @Override
        public void close() {
            fw.close();
        }
    }

    /** One client per member, and one on every member: names m1.., all. */
    static List<Client> clients() throws Exception {
        List<Client> out = new ArrayList<>();
        try {
            for (int i = 0; i < members.length; i++)
                out.add(new Client("m" + (i + 1), members[i]));
            out.add(new Client("all", all));
        } catch (Exception | AssertionError e) {
            closeAll(out);
            throw e;
        }
        return out;
    }

    static void closeAll(List<Client> cs) {
        for (Client c : cs)
            c.close();
    }

    static String trouble(List<Client> cs) {
        StringBuilder b = new StringBuilder();
        for (Client c : cs) {
            String t = c.trouble();
            if (!t.isEmpty())
                b.append(b.length() == 0 ? "" : "; ").append(t);
        }
        return b.length() == 0 ? "no connection trouble" : b.toString();
    }

    // ---- helpers -------------------------------------------------------------

    static void check(boolean cond, String what) {
        if (!cond)
            throw new AssertionError(what);
    }

    static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    static String str(byte[] b) {
        return b == null ? null : new String(b, StandardCharsets.UTF_8);
    }

    static boolean exists(CuratorFramework fw, String path) {
        try {
            return fw.checkExists().forPath(path) != null;
        } catch (Exception e) {
            return false;
        }
    }

    static void waitUntil(BooleanSupplier pred, String what) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_S);
        while (!pred.getAsBoolean()) {
            if (System.nanoTime() > deadline)
                throw new TimeoutException("timed out after " + WAIT_S + "s waiting for " + what);
            Thread.sleep(20);
        }
    }

    /** Runs the tasks on threads of their own, all at once; rethrows the first failure. */
    static void concurrently(List<Callable<Void>> tasks) throws Exception {
        ExecutorService ex = Executors.newFixedThreadPool(tasks.size());
        try {
            List<Future<Void>> fs = new ArrayList<>();
            for (Callable<Void> t : tasks)
                fs.add(ex.submit(t));
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(RECIPE_BOUND_S);
            for (Future<Void> f : fs) {
                try {
                    f.get(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
                } catch (java.util.concurrent.ExecutionException e) {
                    Throwable c = e.getCause();
                    if (c instanceof Exception)
                        throw (Exception) c;
                    if (c instanceof Error)
                        throw (Error) c;
                    throw e;
                }
            }
        } finally {
            ex.shutdownNow();
        }
    }

    /** sync: what c reads of path next is at least as new as every write
     *  acknowledged to anyone before the call (a member may lag otherwise). */
    static void sync(Client c, String path) throws Exception {
        CountDownLatch done = new CountDownLatch(1);
        c.fw.sync().inBackground((fw, e) -> done.countDown()).forPath(path);
        check(done.await(WAIT_S, TimeUnit.SECONDS), c.name + ": sync got no answer within " + WAIT_S + "s");
    }

    static boolean exists(Client c, String path) {
        try {
            return c.fw.checkExists().forPath(path) != null;
        } catch (Exception e) {
            throw new RuntimeException(e);
        }
    }

    // ---- recipes -------------------------------------------------------------

    /** InterProcessMutex: N clients x T threads x M increments of a counter
     *  node under the lock, read and written with the version read, so a
     *  stale read (a member that had not applied the previous holder's write)
     *  fails the write. Exact count, never two holders. */
    static void mutex() throws Exception {
        final int threads = 2, rounds = 25 * SCALE;
        List<Client> cs = clients();
        try {
            String lockPath = "/curator/mutex/lock", ctr = "/curator/mutex/counter";
            cs.get(0).fw.create().creatingParentsIfNeeded().forPath(ctr, bytes("0"));
            AtomicInteger holders = new AtomicInteger(), maxHolders = new AtomicInteger();
            List<Callable<Void>> tasks = new ArrayList<>();
            for (Client c : cs)
                for (int t = 0; t < threads; t++)
                    tasks.add(() -> {
                        InterProcessMutex lock = new InterProcessMutex(c.fw, lockPath);
                        for (int i = 0; i < rounds; i++) {
                            check(lock.acquire(WAIT_S, TimeUnit.SECONDS),
                                  c.name + " could not take the lock within " + WAIT_S + "s");
                            try {
                                int h = holders.incrementAndGet();
                                maxHolders.accumulateAndGet(h, Math::max);
                                Stat st = new Stat();
                                int v = Integer.parseInt(str(c.fw.getData().storingStatIn(st).forPath(ctr)));
                                try {
                                    c.fw.setData().withVersion(st.getVersion()).forPath(ctr, bytes("" + (v + 1)));
                                } catch (KeeperException.BadVersionException e) {
                                    throw new AssertionError(c.name + " read a stale counter under the lock ("
                                                             + v + ", version " + st.getVersion() + ")");
                                }
                                holders.decrementAndGet();
                            } finally {
                                lock.release();
                            }
                        }
                        return null;
                    });
            concurrently(tasks);
            int want = cs.size() * threads * rounds;
            check(maxHolders.get() == 1, "up to " + maxHolders.get() + " holders of the mutex at once");
            for (Client c : cs) {
                sync(c, ctr);
                int got = Integer.parseInt(str(c.fw.getData().forPath(ctr)));
                check(got == want, c.name + " reads counter " + got + ", expected " + want + " (" + trouble(cs) + ")");
            }
            // the lock's parent is a container: the server may have reaped it by now
            Stat parent = cs.get(2).fw.checkExists().forPath(lockPath);
            check(parent == null || parent.getNumChildren() == 0, "lock nodes left behind");
        } finally {
            closeAll(cs);
        }
    }

    /** InterProcessReadWriteLock: readers share, a writer is alone. */
    static void readWriteLock() throws Exception {
        final int rounds = 8 * SCALE;
        List<Client> cs = clients();
        try {
            String path = "/curator/rwlock";
            AtomicInteger readers = new AtomicInteger(), writers = new AtomicInteger();
            List<String> bad = new CopyOnWriteArrayList<>();
            List<Callable<Void>> tasks = new ArrayList<>();
            for (Client c : cs)
                for (boolean writer : new boolean[] {false, true})
                    tasks.add(() -> {
                        InterProcessReadWriteLock rw = new InterProcessReadWriteLock(c.fw, path);
                        InterProcessMutex l = writer ? rw.writeLock() : rw.readLock();
                        for (int i = 0; i < rounds; i++) {
                            check(l.acquire(WAIT_S, TimeUnit.SECONDS), c.name + " lock timed out");
                            try {
                                if (writer) {
                                    int w = writers.incrementAndGet();
                                    if (w != 1 || readers.get() != 0)
                                        bad.add("writer with " + w + " writers, " + readers.get() + " readers");
                                    Thread.sleep(2);
                                    writers.decrementAndGet();
                                } else {
                                    readers.incrementAndGet();
                                    if (writers.get() != 0)
                                        bad.add("reader with a writer");
                                    Thread.sleep(2);
                                    readers.decrementAndGet();
                                }
                            } finally {
                                l.release();
                            }
                        }
                        return null;
                    });
            concurrently(tasks);
            check(bad.isEmpty(), "exclusion broken: " + bad.subList(0, Math.min(3, bad.size())));
        } finally {
            closeAll(cs);
        }
    }

    /** InterProcessSemaphoreV2 with K leases: never more than K holders. */
    static void semaphore() throws Exception {
        final int leases = 2, threads = 2, rounds = 5 * SCALE;
        List<Client> cs = clients();
        try {
            String path = "/curator/semaphore";
            AtomicInteger holders = new AtomicInteger(), maxHolders = new AtomicInteger(), done = new AtomicInteger();
            List<Callable<Void>> tasks = new ArrayList<>();
            for (Client c : cs)
                for (int t = 0; t < threads; t++)
                    tasks.add(() -> {
                        InterProcessSemaphoreV2 sem = new InterProcessSemaphoreV2(c.fw, path, leases);
                        for (int i = 0; i < rounds; i++) {
                            Lease lease = sem.acquire(WAIT_S, TimeUnit.SECONDS);
                            check(lease != null, c.name + " got no lease within " + WAIT_S + "s");
                            try {
                                maxHolders.accumulateAndGet(holders.incrementAndGet(), Math::max);
                                Thread.sleep(5);
                                holders.decrementAndGet();
                                done.incrementAndGet();
                            } finally {
                                sem.returnLease(lease);
                            }
                        }
                        return null;
                    });
            concurrently(tasks);
            check(maxHolders.get() <= leases, maxHolders.get() + " holders of " + leases + " leases at once");
            check(done.get() == cs.size() * threads * rounds, "only " + done.get() + " leases taken");
        } finally {
            closeAll(cs);
        }
    }

    /** LeaderLatch on every client: exactly one leader, every participant
     *  (each reading through its own member) names it; closing the leader's
     *  latch moves leadership to exactly one of the others, until one is left. */
    static void leaderLatch() throws Exception {
        List<Client> cs = clients();
        Map<String, LeaderLatch> open = new LinkedHashMap<>();
        try {
            String path = "/curator/latch";
            for (Client c : cs) {
                LeaderLatch l = new LeaderLatch(c.fw, path, c.name);
                open.put(c.name, l);
                l.start();
            }
            List<String> order = new ArrayList<>();
            while (!open.isEmpty()) {
                waitUntil(() -> open.values().stream().filter(LeaderLatch::hasLeadership).count() == 1,
                          "exactly one of " + open.keySet() + " to lead");
                String leader = null;
                for (Map.Entry<String, LeaderLatch> e : open.entrySet())
                    if (e.getValue().hasLeadership())
                        leader = e.getKey();
                check(leader != null, "the leader gave up on its own");
                check(!order.contains(leader), leader + " leads a second time");
                order.add(leader);
                final String l = leader;
                for (LeaderLatch latch : open.values())
                    waitUntil(() -> {
                        try {
                            Participant p = latch.getLeader();
                            return p.isLeader() && p.getId().equals(l);
                        } catch (Exception e) {
                            return false;
                        }
                    }, latch.getId() + " to name " + l + " the leader");
                for (LeaderLatch latch : open.values())
                    check(latch.getParticipants().size() == open.size(),
                          latch.getId() + " sees " + latch.getParticipants().size() + " participants, not " + open.size());
                open.remove(leader).close();
            }
            check(order.size() == cs.size(), "leaders " + order);
        } finally {
            for (LeaderLatch l : open.values())
                l.close();
            closeAll(cs);
        }
    }

    /** LeaderSelector on every client: takeLeadership never runs on two at
     *  once; closing the leader hands leadership to another, until each has
     *  led exactly once. */
    static void leaderSelector() throws Exception {
        List<Client> cs = clients();
        Map<String, LeaderSelector> sel = new LinkedHashMap<>();
        try {
            String path = "/curator/selector";
            AtomicInteger active = new AtomicInteger(), maxActive = new AtomicInteger();
            BlockingQueue<String> leaders = new LinkedBlockingQueue<>();
            for (Client c : cs) {
                LeaderSelector s = new LeaderSelector(c.fw, path, new LeaderSelectorListenerAdapter() {
                    @Override
                    public void takeLeadership(CuratorFramework fw) throws Exception {
                        maxActive.accumulateAndGet(active.incrementAndGet(), Math::max);
                        try {
                            leaders.add(c.name);
                            Thread.sleep(TimeUnit.SECONDS.toMillis(RECIPE_BOUND_S * 2)); // until closed
                        } finally {
                            active.decrementAndGet();
                        }
                    }
                });
                s.setId(c.name);
                sel.put(c.name, s);
            }
            for (LeaderSelector s : sel.values())
                s.start();
            List<String> order = new ArrayList<>();
            for (int i = 0; i < cs.size(); i++) {
                String leader = leaders.poll(WAIT_S, TimeUnit.SECONDS);
                check(leader != null, "no leader among " + sel.keySet() + " within " + WAIT_S + "s");
                check(!order.contains(leader), leader + " leads a second time");
                order.add(leader);
                final String l = leader;
                for (LeaderSelector s : sel.values())
                    waitUntil(() -> {
                        try {
                            return s.getLeader().getId().equals(l);
                        } catch (Exception e) {
                            return false;
                        }
                    }, "every selector to name " + l + " the leader");
                sel.remove(leader).close();
            }
            check(maxActive.get() == 1, maxActive.get() + " leaders at once");
            check(leaders.isEmpty(), "extra leaders " + leaders);
        } finally {
            for (LeaderSelector s : sel.values())
                s.close();
            closeAll(cs);
        }
    }

    /** DistributedAtomicLong: N clients x T threads x M increments, each
     *  repeated until it reports success, as the recipe documents. The final
     *  value is exactly the number of successful increments. */
    static void atomicLong() throws Exception {
        final int threads = 2, rounds = 25 * SCALE;
        List<Client> cs = clients();
        try {
            String path = "/curator/atomic";
            AtomicInteger attempts = new AtomicInteger(), succeeded = new AtomicInteger();
            List<Callable<Void>> tasks = new ArrayList<>();
            for (Client c : cs)
                for (int t = 0; t < threads; t++)
                    tasks.add(() -> {
                        DistributedAtomicLong n = new DistributedAtomicLong(c.fw, path, new RetryNTimes(50, 10));
                        for (int i = 0; i < rounds; i++) {
                            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_S);
                            while (true) {
                                attempts.incrementAndGet();
                                AtomicValue<Long> v = n.increment();
                                if (v.succeeded()) {
                                    check(v.postValue() == v.preValue() + 1, "increment " + v.preValue()
                                          + " -> " + v.postValue());
                                    succeeded.incrementAndGet();
                                    break;
                                }
                                check(System.nanoTime() < deadline, c.name + " could not increment within " + WAIT_S + "s");
                            }
                        }
                        return null;
                    });
            concurrently(tasks);
            int want = cs.size() * threads * rounds;
            check(succeeded.get() == want, succeeded.get() + " increments succeeded, expected " + want);
            for (Client c : cs) {
                sync(c, path);
                long got = new DistributedAtomicLong(c.fw, path, new RetryNTimes(3, 10)).get().postValue();
                check(got == want, c.name + " reads " + got + " after " + want + " increments (" + attempts.get()
                      + " attempts; " + trouble(cs) + ")");
            }
        } finally {
            closeAll(cs);
        }
    }

    /** DistributedBarrier: waiters on every member block until the barrier
     *  is removed, and then all of them pass. */
    static void barrier() throws Exception {
        List<Client> cs = clients();
        try {
            String path = "/curator/barrier";
            new DistributedBarrier(cs.get(0).fw, path).setBarrier();
            AtomicInteger waiting = new AtomicInteger();
            java.util.concurrent.atomic.AtomicBoolean removed = new java.util.concurrent.atomic.AtomicBoolean();
            List<Callable<Void>> tasks = new ArrayList<>();
            for (Client c : cs)
                tasks.add(() -> {
                    DistributedBarrier b = new DistributedBarrier(c.fw, path);
                    waiting.incrementAndGet();
                    boolean passed = b.waitOnBarrier(WAIT_S, TimeUnit.SECONDS);
                    check(passed, c.name + " did not pass the barrier within " + WAIT_S + "s of its removal");
                    check(removed.get(), c.name + " passed the barrier before it was removed");
                    return null;
                });
            ExecutorService ex = Executors.newSingleThreadExecutor();
            try {
                Future<?> waiters = ex.submit(() -> {
                    concurrently(tasks);
                    return null;
                });
                waitUntil(() -> waiting.get() == cs.size(), "every waiter to start");
                Thread.sleep(200); // lets the waiters reach the server: not a bound on anything
                check(!waiters.isDone(), "waiters came back with the barrier still up");
                removed.set(true);
                new DistributedBarrier(cs.get(members.length).fw, path).removeBarrier();
                try {
                    waiters.get(RECIPE_BOUND_S, TimeUnit.SECONDS);
                } catch (java.util.concurrent.ExecutionException e) {
                    throw (Exception) (e.getCause() instanceof Exception ? e.getCause() : e);
                }
            } finally {
                ex.shutdownNow();
            }
        } finally {
            closeAll(cs);
        }
    }

    /** DistributedDoubleBarrier of N members, one per client: nobody leaves
     *  enter() before all N called it, nobody leaves leave() before all N
     *  called it; three rounds on the same path. */
    static void doubleBarrier() throws Exception {
        List<Client> cs = clients();
        try {
            int n = cs.size();
            for (int round = 0; round < 3; round++) {
                // A barrier per round: Curator's says "ready" with a node
                // that each leaver removes on its way out, and a
                // participant of the next round reading from a lagging
                // member could still see it and enter alone.
                String path = "/curator/double-" + round;
                AtomicInteger entering = new AtomicInteger(), leaving = new AtomicInteger();
                List<Callable<Void>> tasks = new ArrayList<>();
                for (Client c : cs)
                    tasks.add(() -> {
                        DistributedDoubleBarrier b = new DistributedDoubleBarrier(c.fw, path, n);
                        entering.incrementAndGet();
                        check(b.enter(WAIT_S, TimeUnit.SECONDS), c.name + " did not enter within " + WAIT_S + "s");
                        check(entering.get() == n, c.name + " entered with " + entering.get() + " of " + n + " there");
                        leaving.incrementAndGet();
                        check(b.leave(WAIT_S, TimeUnit.SECONDS), c.name + " did not leave within " + WAIT_S + "s");
                        // Curator's leave() returns once its own node is
                        // gone and one other is left, whether or not that
                        // member has begun to leave (CURATOR-233, open in
                        // 5.4): a member's node goes only in its leave(), so
                        // at most one member may not have got there yet.
                        check(leaving.get() >= n - 1, c.name + " left with " + leaving.get() + " of " + n + " leaving");
                        return null;
                    });
                concurrently(tasks);
            }
        } finally {
            closeAll(cs);
        }
    }

    /** A cache per client (so per member) of one subtree; one change at a
     *  time, made by a writer that moves from member to member, and every
     *  cache must report it (in order) before the next. */
    interface Cache extends AutoCloseable {
        List<String> events();

        @Override
        void close();
    }

    static Cache curatorCache(CuratorFramework fw, String root) {
        List<String> ev = new CopyOnWriteArrayList<>();
        CuratorCache cache = CuratorCache.build(fw, root);
        cache.listenable().addListener(CuratorCacheListener.builder()
                .forCreates(d -> ev.add("create " + d.getPath() + " " + str(d.getData())))
                .forChanges((o, d) -> ev.add("change " + d.getPath() + " " + str(d.getData())))
                .forDeletes(d -> ev.add("delete " + d.getPath()))
                .forInitialized(() -> ev.add("initialized"))
                .build());
        cache.start();
        return new Cache() {
            public List<String> events() {
                return ev;
            }

            public void close() {
                cache.close();
            }
        };
    }

    static Cache treeCache(CuratorFramework fw, String root) throws Exception {
        List<String> ev = new CopyOnWriteArrayList<>();
        TreeCache cache = TreeCache.newBuilder(fw, root).build();
        cache.getListenable().addListener((c, e) -> {
            ChildData d = e.getData();
            switch (e.getType()) {
            case NODE_ADDED: ev.add("create " + d.getPath() + " " + str(d.getData())); break;
            case NODE_UPDATED: ev.add("change " + d.getPath() + " " + str(d.getData())); break;
            case NODE_REMOVED: ev.add("delete " + d.getPath()); break;
            case INITIALIZED: ev.add("initialized"); break;
            default: ev.add(e.getType().toString());
            }
        });
        cache.start();
        return new Cache() {
            public List<String> events() {
                return ev;
            }

            public void close() {
                cache.close();
            }
        };
    }

    interface CacheMaker {
        Cache make(CuratorFramework fw, String root) throws Exception;
    }

    static void caches(String root, CacheMaker maker) throws Exception {
        List<Client> cs = clients();
        List<Cache> caches = new ArrayList<>();
        try {
            cs.get(0).fw.create().creatingParentsIfNeeded().forPath(root, bytes("root"));
            // A member's reads may lag the create (reads are not linearizable,
            // on ZooKeeper either): each client first sees the root, or its
            // cache may report "initialized" before "create".
            for (Client c : cs)
                waitUntil(() -> exists(c.fw, root), "every client to see " + root);
            for (Client c : cs)
                caches.add(maker.make(c.fw, root));
            List<String> want = new ArrayList<>(List.of("create " + root + " root", "initialized"));
            for (Cache k : caches)
                waitUntil(() -> k.events().equals(want), "every cache to initialize");
            List<Object[]> steps = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                String p = root + "/n" + i;
                steps.add(new Object[] {"create", p, "v0"});
                steps.add(new Object[] {"change", p, "v1"});
                steps.add(new Object[] {"create", p + "/kid", "k"});
                steps.add(new Object[] {"change", p, "v2"});
                steps.add(new Object[] {"change", p + "/kid", "k1"});
            }
            for (int i = 0; i < 4; i += 2) {
                steps.add(new Object[] {"delete", root + "/n" + i + "/kid", null});
                steps.add(new Object[] {"delete", root + "/n" + i, null});
            }
            int k = 0;
            for (Object[] s : steps) {
                CuratorFramework w = cs.get(k++ % cs.size()).fw;
                String op = (String) s[0], p = (String) s[1], d = (String) s[2];
                if (op.equals("create"))
                    w.create().forPath(p, bytes(d));
                else if (op.equals("change"))
                    w.setData().forPath(p, bytes(d));
                else
                    w.delete().forPath(p);
                want.add(op + " " + p + (d == null ? "" : " " + d));
                for (int j = 0; j < caches.size(); j++) {
                    Cache c = caches.get(j);
                    String who = cs.get(j).name;
                    waitUntil(() -> c.events().size() >= want.size(),
                              who + "'s cache to see '" + want.get(want.size() - 1) + "' (it saw " + c.events() + ")");
                    check(c.events().equals(want), who + "'s cache saw " + c.events() + ", expected " + want);
                }
            }
        } finally {
            for (Cache c : caches)
                c.close();
            closeAll(cs);
        }
    }

    /** PersistentNode (ephemeral) made through one member: seen through the
     *  others, made again when another client deletes it, its data set
     *  through the recipe, and gone once closed. */
    static void persistentNode() throws Exception {
        List<Client> cs = clients();
        PersistentNode node = null;
        try {
            String path = "/curator/persistent/node";
            Client owner = cs.get(0), other = cs.get(1), third = cs.get(2);
            node = new PersistentNode(owner.fw, CreateMode.EPHEMERAL, false, path, bytes("a"), true);
            node.start();
            check(node.waitForInitialCreate(WAIT_S, TimeUnit.SECONDS), "not created within " + WAIT_S + "s");
            waitUntil(() -> exists(other, path), other.name + " to see the node");
            Stat st = other.fw.checkExists().forPath(path);
            check(st.getEphemeralOwner() == owner.fw.getZookeeperClient().getZooKeeper().getSessionId(),
                  "ephemeral owner " + Long.toHexString(st.getEphemeralOwner()));
            for (int i = 0; i < 3; i++) {
                Client deleter = cs.get((i % 2) + 1);
                sync(deleter, path); // its member may not have the node made again yet
                long before = deleter.fw.checkExists().forPath(path).getCzxid();
                deleter.fw.delete().forPath(path);
                waitUntil(() -> {
                    try {
                        Stat s = third.fw.checkExists().forPath(path);
                        return s != null && s.getCzxid() > before;
                    } catch (Exception e) {
                        return false;
                    }
                }, "the node to be made again after " + deleter.name + " deleted it");
            }
            node.setData(bytes("b"));
            waitUntil(() -> {
                try {
                    return "b".equals(str(third.fw.getData().forPath(path)));
                } catch (Exception e) {
                    return false;
                }
            }, third.name + " to see the new data");
            node.close();
            node = null;
            waitUntil(() -> !exists(third, path), "the node to go once closed");
        } finally {
            if (node != null)
                node.close();
            closeAll(cs);
        }
    }

    /** PersistentTtlNode (extended types: a container kept alive by a TTL
     *  child it touches): it stays while open, across several TTLs, and goes
     *  once closed (the server's TTL and container reaping). */
    static void persistentTtlNode() throws Exception {
        final long ttl = 1500;
        List<Client> cs = clients();
        PersistentTtlNode node = null;
        try {
            String path = "/curator/persistent/ttl";
            Client owner = cs.get(1), other = cs.get(2);
            node = new PersistentTtlNode(owner.fw, path, ttl, bytes("t"));
            node.start();
            check(node.waitForInitialCreate(WAIT_S, TimeUnit.SECONDS), "not created within " + WAIT_S + "s");
            String touch = path + "/" + PersistentTtlNode.DEFAULT_CHILD_NODE_NAME;
            waitUntil(() -> exists(other, touch), other.name + " to see the node and its touch child");
            long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(4 * ttl);
            while (System.nanoTime() < until) {
                check(exists(other, path), "the node went while its owner was touching it");
                Thread.sleep(100);
            }
            node.close();
            node = null;
            waitUntil(() -> !exists(cs.get(0), path), "the node to go once closed");
        } finally {
            if (node != null)
                node.close();
            closeAll(cs);
        }
    }

    /** inBackground create, setData, getData, delete from every client at
     *  once: every callback arrives, in the order its client sent the
     *  requests, with the outcome that order implies. */
    static void background() throws Exception {
        final int nodes = 25 * SCALE;
        List<Client> cs = clients();
        try {
            Map<String, List<String>> got = new ConcurrentHashMap<>();
            Map<String, List<String>> want = new ConcurrentHashMap<>();
            CountDownLatch all = new CountDownLatch(cs.size() * nodes * 4);
            List<Callable<Void>> tasks = new ArrayList<>();
            for (Client c : cs) {
                String base = "/curator/bg/" + c.name;
                c.fw.create().creatingParentsIfNeeded().forPath(base);
                List<String> g = new CopyOnWriteArrayList<>(), w = new ArrayList<>();
                got.put(c.name, g);
                want.put(c.name, w);
                tasks.add(() -> {
                    org.apache.curator.framework.api.BackgroundCallback cb = (fw, e) -> {
                        String what = e.getType() + " " + e.getPath() + " " + KeeperException.Code.get(e.getResultCode());
                        if (e.getType() == CuratorEventType.GET_DATA)
                            what += " " + str(e.getData());
                        g.add(what);
                        all.countDown();
                    };
                    for (int i = 0; i < nodes; i++) {
                        String p = base + "/n" + i;
                        c.fw.create().inBackground(cb).forPath(p, bytes("a" + i));
                        c.fw.setData().inBackground(cb).forPath(p, bytes("b" + i));
                        c.fw.getData().inBackground(cb).forPath(p);
                        w.add("CREATE " + p + " OK");
                        w.add("SET_DATA " + p + " OK");
                        w.add("GET_DATA " + p + " OK b" + i);
                    }
                    for (int i = 0; i < nodes; i++) {
                        String p = base + "/n" + i;
                        c.fw.delete().inBackground(cb).forPath(p);
                        w.add("DELETE " + p + " OK");
                    }
                    return null;
                });
            }
            concurrently(tasks);
            if (!all.await(WAIT_S, TimeUnit.SECONDS)) {
                StringBuilder b = new StringBuilder();
                for (Client c : cs)
                    b.append(c.name).append(" ").append(got.get(c.name).size()).append(" ");
                throw new AssertionError(all.getCount() + " callbacks missing after " + WAIT_S + "s (" + b + "of "
                                         + (nodes * 4) + " each)");
            }
            for (Client c : cs) {
                List<String> g = got.get(c.name), w = want.get(c.name);
                for (int i = 0; i < w.size(); i++)
                    check(i < g.size() && g.get(i).equals(w.get(i)),
                          c.name + ": callback " + i + " is '" + (i < g.size() ? g.get(i) : "missing")
                          + "', expected '" + w.get(i) + "'");
                check(g.size() == w.size(), c.name + ": " + g.size() + " callbacks for " + w.size() + " requests");
            }
        } finally {
            closeAll(cs);
        }
    }

    // ---- driver --------------------------------------------------------------

    interface Recipe {
        void run() throws Exception;
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: CuratorRecipes HOST:PORT,HOST:PORT,... [recipe...]");
            System.exit(2);
        }
        all = args[0];
        members = all.split(",");
        Map<String, Recipe> recipes = new LinkedHashMap<>();
        recipes.put("mutex", CuratorRecipes::mutex);
        recipes.put("read_write_lock", CuratorRecipes::readWriteLock);
        recipes.put("semaphore_v2", CuratorRecipes::semaphore);
        recipes.put("leader_latch", CuratorRecipes::leaderLatch);
        recipes.put("leader_selector", CuratorRecipes::leaderSelector);
        recipes.put("distributed_atomic_long", CuratorRecipes::atomicLong);
        recipes.put("distributed_barrier", CuratorRecipes::barrier);
        recipes.put("distributed_double_barrier", CuratorRecipes::doubleBarrier);
        recipes.put("curator_cache", () -> caches("/curator/cache", CuratorRecipes::curatorCache));
        recipes.put("tree_cache", () -> caches("/curator/treecache", CuratorRecipes::treeCache));
        recipes.put("persistent_node", CuratorRecipes::persistentNode);
        recipes.put("persistent_ttl_node", CuratorRecipes::persistentTtlNode);
        recipes.put("background_operations", CuratorRecipes::background);
        List<String> only = Arrays.asList(args).subList(1, args.length);
        for (String o : only)
            if (!recipes.containsKey(o)) {
                System.err.println("no recipe " + o + "; recipes: " + recipes.keySet());
                System.exit(2);
            }
        int passed = 0, failed = 0;
        for (Map.Entry<String, Recipe> r : recipes.entrySet()) {
            if (!only.isEmpty() && !only.contains(r.getKey()))
                continue;
            long t0 = System.nanoTime();
            Throwable err = null;
            ExecutorService ex = Executors.newSingleThreadExecutor(task -> {
                Thread t = new Thread(task, "recipe-" + r.getKey());
                t.setDaemon(true);
                return t;
            });
            Future<?> f = ex.submit(() -> {
                r.getValue().run();
                return null;
            });
            try {
                f.get(RECIPE_BOUND_S + 15, TimeUnit.SECONDS);
            } catch (java.util.concurrent.ExecutionException e) {
                err = e.getCause();
            } catch (TimeoutException e) {
                err = new TimeoutException("did not finish within " + (RECIPE_BOUND_S + 15) + "s");
                dumpThreads();
                f.cancel(true);
            }
            ex.shutdownNow();
            double s = (System.nanoTime() - t0) / 1e9;
            if (err == null) {
                passed++;
                System.out.printf("ok   %-50s %.2fs%n", r.getKey(), s);
            } else {
                failed++;
                System.out.printf("FAIL %s %.2fs%n", r.getKey(), s);
                err.printStackTrace(System.out);
            }
            System.out.flush();
        }
        System.out.println(passed + " passed, " + failed + " failed");
        System.out.flush();
        // Curator leaves non-daemon threads behind a failed recipe
        System.exit(failed == 0 ? 0 : 1);
    }

    static void dumpThreads() {
        for (Map.Entry<Thread, StackTraceElement[]> e : Thread.getAllStackTraces().entrySet()) {
            System.out.println("thread " + e.getKey().getName() + ":");
            for (StackTraceElement s : e.getValue())
                System.out.println("    at " + s);
        }
    }
}
