package scaleout_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/messaging-server/messaging-server/internal/e2e"
	"github.com/messaging-server/messaging-server/internal/testenv"
)

// drainResult is what one Redis-mode drain measured.
type drainResult struct {
	e2e.Ledger
	resumed, longest time.Duration // ticks after the midway event
	took             time.Duration
	r                *e2e.System
}

// drain sends 2,000 messages through a scheduler, 2 workers and an api
// configured with vars, calls midway (may be nil) once half are sent, and
// checks that every message is sent, that no program exited, and that the
// api's /readyz and asynqmon reach Redis in the same mode.
func drain(t *testing.T, vars map[string]string, midway func()) drainResult {
	t.Helper()
	start := time.Now()
	vars["MESSAGE_FETCH_LIMIT"] = "200"
	vars["MAX_CONCURRENT_JOBS"] = "8"
	r := newRun(t, 2000, e2e.Slow(2*time.Millisecond), vars)
	port := e2e.FreePort(t)
	procs := []*e2e.Proc{r.Start("scheduler"), r.Start("worker-1"), r.Start("worker-2"), r.Start("api", fmt.Sprint("HTTP_PORT=", port))}
	stopTicks := watchTicks(r)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	get := func(path string) int { return e2e.GetStatus(base + path) }
	testenv.Eventually(t, 30*time.Second, "half of the messages sent", func() bool { return r.Count("sent") >= 1000 })
	t0 := time.Now()
	if midway != nil {
		midway()
	}
	r.WaitSent(60 * time.Second)
	res := drainResult{r: r}
	ticks, err := stopTicks()
	if err != nil {
		t.Fatal(err)
	}
	res.resumed, res.longest = tickGap(ticks, t0)
	testenv.Eventually(t, 20*time.Second, "/readyz 200 and asynqmon answering", func() bool {
		return get("/readyz") == http.StatusOK && get("/monitoring/api/queues") == http.StatusOK
	})
	// The api reads a sent record through the same Redis.
	resp, err := http.Get(base + "/api/v1/messages/" + r.IDs[len(r.IDs)-1])
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if src := resp.Header.Get("X-Sent-Record-Source"); resp.StatusCode != http.StatusOK || src != "cache" {
		t.Errorf("GET the last message: %d, source %q; want 200 from the cache", resp.StatusCode, src)
	}
	r.AssertAlive(procs...)
	r.StopAll(procs...)
	res.Ledger = r.Ledger(nil)
	res.took = time.Since(start)
	return res
}

func (d drainResult) log(t *testing.T, what string) {
	t.Logf("%s: %d messages, %d delivered, %d repeated, %d lost in %s; ticks resumed %.1f s after the event, longest interval between ticks %.1f s (CRON_INTERVAL 1 s)",
		what, d.Messages, d.Delivered, d.Repeats, d.Lost, d.took.Round(100*time.Millisecond), d.resumed.Seconds(), d.longest.Seconds())
}

// sentinels is a master, a replica and three sentinels watching them.
type sentinels struct {
	master, replica *e2e.Server
	masterPort      int
	addrs           []string
}

const masterName = "msmaster"

func startSentinels(t *testing.T) *sentinels {
	t.Helper()
	s := &sentinels{masterPort: e2e.FreePort(t)}
	s.master = e2e.StartRedis(t, "redis-master", s.masterPort, nil)
	rport := e2e.FreePort(t)
	s.replica = e2e.StartRedis(t, "redis-replica", rport, nil, "--replicaof", "127.0.0.1", fmt.Sprint(s.masterPort))
	for i := range 3 {
		port := e2e.FreePort(t)
		dir := t.TempDir()
		conf := filepath.Join(dir, "sentinel.conf")
		body := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor %s 127.0.0.1 %d 2\n"+
			"sentinel down-after-milliseconds %s 1000\nsentinel failover-timeout %s 5000\nsentinel parallel-syncs %s 1\n",
			port, dir, masterName, s.masterPort, masterName, masterName, masterName)
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		e2e.StartServer(t, fmt.Sprintf("sentinel-%d", i+1), "redis-sentinel", conf)
		s.addrs = append(s.addrs, fmt.Sprintf("127.0.0.1:%d", port))
	}
	// Every sentinel must know the replica and the two other sentinels
	// before a failover can be agreed.
	for _, a := range s.addrs {
		sc := redis.NewSentinelClient(&redis.Options{Addr: a})
		t.Cleanup(func() { _ = sc.Close() })
		testenv.Eventually(t, 30*time.Second, "sentinel "+a+" to see the replica and its peers", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			reps, err := sc.Replicas(ctx, masterName).Result()
			if err != nil || len(reps) != 1 || reps[0]["flags"] != "slave" || reps[0]["master-link-status"] != "ok" {
				return false
			}
			peers, err := sc.Sentinels(ctx, masterName).Result()
			return err == nil && len(peers) == 2
		})
	}
	return s
}

func (s *sentinels) env() map[string]string {
	return map[string]string{
		"REDIS_SENTINEL_ADDRS":  strings.Join(s.addrs, ","),
		"REDIS_SENTINEL_MASTER": masterName,
		"REDIS_HOST":            "", "REDIS_PORT": "",
	}
}

// waitNewMaster waits until the sentinels name a master other than the old
// one.
func (s *sentinels) waitNewMaster(t *testing.T) time.Duration {
	t.Helper()
	start := time.Now()
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.addrs[0]})
	defer func() { _ = sc.Close() }()
	old := fmt.Sprint(s.masterPort)
	testenv.Eventually(t, 30*time.Second, "the sentinels to promote the replica", func() bool {
		addr, err := sc.GetMasterAddrByName(context.Background(), masterName).Result()
		return err == nil && len(addr) == 2 && addr[1] != old
	})
	return time.Since(start)
}

// Sentinel, forced failover: SENTINEL FAILOVER midway through the drain.
func TestSentinelForcedFailover(t *testing.T) {
	e2e.SlowTest(t)
	s := startSentinels(t)
	var promoted time.Duration
	res := drain(t, s.env(), func() {
		sc := redis.NewSentinelClient(&redis.Options{Addr: s.addrs[0]})
		defer func() { _ = sc.Close() }()
		if err := sc.Failover(context.Background(), masterName).Err(); err != nil {
			t.Fatalf("SENTINEL FAILOVER: %v", err)
		}
		promoted = s.waitNewMaster(t)
	})
	res.log(t, fmt.Sprintf("sentinel, SENTINEL FAILOVER (new master named after %.1f s)", promoted.Seconds()))
	if res.resumed < 0 || res.resumed > 15*time.Second {
		t.Errorf("ticks resumed after %s, want within 15 s", res.resumed)
	}
}

// Sentinel, master killed: kill -9 of the master midway through the drain.
func TestSentinelMasterKilled(t *testing.T) {
	e2e.SlowTest(t)
	s := startSentinels(t)
	var promoted time.Duration
	res := drain(t, s.env(), func() {
		s.master.Kill()
		promoted = s.waitNewMaster(t)
	})
	res.log(t, fmt.Sprintf("sentinel, master killed (new master named after %.1f s)", promoted.Seconds()))
	if res.resumed < 0 || res.resumed > 20*time.Second {
		t.Errorf("ticks resumed after %s, want within 20 s", res.resumed)
	}
}

// Cluster: three masters made with redis-cli --cluster create; the drain,
// then every message:sent:<id> record read back through the cluster.
func TestClusterDrain(t *testing.T) {
	e2e.SlowTest(t)
	var addrs []string
	for i := range 3 {
		port, bus := e2e.FreePort(t), e2e.FreePort(t)
		dir := t.TempDir()
		e2e.StartRedis(t, fmt.Sprintf("cluster-node-%d", i+1), port, nil,
			"--cluster-enabled", "yes", "--cluster-port", fmt.Sprint(bus),
			"--cluster-config-file", filepath.Join(dir, "nodes.conf"), "--cluster-node-timeout", "2000")
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", port))
	}
	if _, err := e2e.RedisCLI(append(append([]string{"--cluster", "create"}, addrs...), "--cluster-yes")...); err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		host, port, _ := strings.Cut(a, ":")
		testenv.Eventually(t, 30*time.Second, "cluster_state:ok on "+a, func() bool {
			out, err := e2e.RedisCLI("-h", host, "-p", port, "cluster", "info")
			return err == nil && strings.Contains(out, "cluster_state:ok")
		})
	}
	res := drain(t, map[string]string{"REDIS_CLUSTER_ADDRS": strings.Join(addrs, ","), "REDIS_HOST": "", "REDIS_PORT": ""}, nil)
	res.log(t, "cluster of 3 masters")

	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	t.Cleanup(func() { _ = cc.Close() })
	ctx := context.Background()
	cmds, err := cc.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, id := range res.r.IDs {
			p.Get(ctx, "message:sent:"+id)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read the sent records through the cluster: %v", err)
	}
	perNode := map[string]int{} // redis-cli gives each master a third of the slots
	for i, c := range cmds {
		v, err := c.(*redis.StringCmd).Result()
		if err != nil || !strings.Contains(v, `"message_id"`) {
			t.Fatalf("message:sent:%s: %q %v", res.r.IDs[i], v, err)
		}
		perNode[fmt.Sprint(cc.ClusterKeySlot(ctx, "message:sent:"+res.r.IDs[i]).Val()/5462)]++
	}
	t.Logf("%d sent records read through the cluster, spread over slot thirds %v", len(cmds), perNode)
}

// TLS: the drain against a redis-server that speaks only TLS, its
// certificate signed by a CA made here and named by REDIS_TLS_CA.
func TestTLSDrain(t *testing.T) {
	e2e.SlowTest(t)
	dir := t.TempDir()
	ca, cert, key := writeTestPKI(t, dir)
	port := e2e.FreePort(t)
	e2e.StartRedis(t, "redis-tls", 0, []string{"--tls", "--cacert", ca, "-h", "127.0.0.1", "-p", fmt.Sprint(port)},
		"--tls-port", fmt.Sprint(port), "--tls-cert-file", cert, "--tls-key-file", key,
		"--tls-ca-cert-file", ca, "--tls-auth-clients", "no")
	res := drain(t, map[string]string{
		"REDIS_HOST": "127.0.0.1", "REDIS_PORT": fmt.Sprint(port), "REDIS_TLS": "true", "REDIS_TLS_CA": ca,
	}, nil)
	res.log(t, "TLS")
}
