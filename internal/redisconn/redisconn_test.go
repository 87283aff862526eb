package redisconn_test

import (
	"testing"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/messaging-server/messaging-server/internal/config"
	"github.com/messaging-server/messaging-server/internal/redisconn"
)

func load(t *testing.T, vars ...string) config.Config {
	t.Helper()
	c, err := config.Load(append([]string{"WEBHOOK_URL=https://example.test/hook"}, vars...))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Each mode gives asynq's matching option and go-redis's matching client,
// with TLS when asked for.
func TestModes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		vars []string
		mode redisconn.Mode
		opt  func(asynq.RedisConnOpt) bool
		tls  bool
	}{
		{"single", []string{"REDIS_HOST=r", "REDIS_PORT=7000", "REDIS_DB=3"}, redisconn.Single, func(o asynq.RedisConnOpt) bool {
			c, ok := o.(asynq.RedisClientOpt)
			return ok && c.Addr == "r:7000" && c.DB == 3 && c.TLSConfig == nil
		}, false},
		{"sentinel", []string{"REDIS_SENTINEL_ADDRS=a:1, b:2", "REDIS_SENTINEL_MASTER=m", "REDIS_SENTINEL_PASSWORD=sp", "REDIS_PASSWORD=dp", "REDIS_TLS=true"}, redisconn.Sentinel, func(o asynq.RedisConnOpt) bool {
			c, ok := o.(asynq.RedisFailoverClientOpt)
			return ok && c.MasterName == "m" && len(c.SentinelAddrs) == 2 && c.SentinelAddrs[1] == "b:2" &&
				c.SentinelPassword == "sp" && c.Password == "dp" && c.TLSConfig != nil
		}, true},
		{"cluster", []string{"REDIS_CLUSTER_ADDRS=n1:7000,n2:7000"}, redisconn.Cluster, func(o asynq.RedisConnOpt) bool {
			c, ok := o.(asynq.RedisClusterClientOpt)
			return ok && len(c.Addrs) == 2
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := load(t, tc.vars...)
			if got := redisconn.ModeOf(cfg); got != tc.mode {
				t.Fatalf("mode %s, want %s", got, tc.mode)
			}
			if opt := redisconn.AsynqOpt(cfg); !tc.opt(opt) {
				t.Fatalf("asynq option %#v", opt)
			}
			if got := redisconn.TLSConfig(cfg) != nil; got != tc.tls {
				t.Fatalf("TLS %v, want %v", got, tc.tls)
			}
			c := redisconn.NewClient(cfg, 4)
			defer func() { _ = c.Close() }()
			_, isCluster := c.(*redis.ClusterClient)
			if isCluster != (tc.mode == redisconn.Cluster) {
				t.Fatalf("client %T for mode %s", c, tc.mode)
			}
		})
	}
}
