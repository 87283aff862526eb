// Package redisconn turns the configured Redis mode (one server, Sentinel or
// Cluster, each with or without TLS) into the two handles the programs use:
// an asynq.RedisConnOpt for asynq components that dial on their own (the
// scheduler, asynqmon) and a go-redis UniversalClient for everything else
// (the worker's asynq server, the cache, the api's inspector and /readyz).
// It is the one place that reads the Redis variables, so every program
// reaches Redis the same way.
package redisconn

import (
	"crypto/tls"
	"crypto/x509"
	"strings"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/messaging-server/messaging-server/internal/config"
)

// Mode names how Redis is reached.
type Mode string

// The modes, chosen by REDIS_SENTINEL_ADDRS and REDIS_CLUSTER_ADDRS.
const (
	Single   Mode = "single"
	Sentinel Mode = "sentinel"
	Cluster  Mode = "cluster"
)

// ModeOf is the mode cfg selects.
func ModeOf(cfg config.Config) Mode {
	switch {
	case len(cfg.RedisSentinelAddrs) > 0:
		return Sentinel
	case len(cfg.RedisClusterAddrs) > 0:
		return Cluster
	default:
		return Single
	}
}

// TLSConfig is the client TLS configuration, or nil without REDIS_TLS. The
// server name is left empty so that each node's certificate is checked
// against the address it is dialled at.
func TLSConfig(cfg config.Config) *tls.Config {
	if !cfg.RedisTLS {
		return nil
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(cfg.RedisTLSCAPEM) > 0 {
		pool := x509.NewCertPool()
		// config.Load checked that the file holds a certificate.
		pool.AppendCertsFromPEM(cfg.RedisTLSCAPEM)
		t.RootCAs = pool
	}
	return t
}

func trimmed(addrs []string) []string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = strings.TrimSpace(a)
	}
	return out
}

// AsynqOpt describes the configured Redis for asynq components that open
// their own connection.
func AsynqOpt(cfg config.Config) asynq.RedisConnOpt {
	switch ModeOf(cfg) {
	case Sentinel:
		return asynq.RedisFailoverClientOpt{
			MasterName:       cfg.RedisSentinelMaster,
			SentinelAddrs:    trimmed(cfg.RedisSentinelAddrs),
			SentinelPassword: cfg.RedisSentinelPassword,
			Password:         cfg.RedisPassword,
			DB:               cfg.RedisDB,
			TLSConfig:        TLSConfig(cfg),
		}
	case Cluster:
		return asynq.RedisClusterClientOpt{
			Addrs:     trimmed(cfg.RedisClusterAddrs),
			Password:  cfg.RedisPassword,
			TLSConfig: TLSConfig(cfg),
		}
	default:
		return asynq.RedisClientOpt{
			Addr:      cfg.RedisAddr(),
			Password:  cfg.RedisPassword,
			DB:        cfg.RedisDB,
			TLSConfig: TLSConfig(cfg),
		}
	}
}

// NewClient opens a go-redis client in the configured mode with at most
// poolSize connections per node.
func NewClient(cfg config.Config, poolSize int) redis.UniversalClient {
	switch ModeOf(cfg) {
	case Sentinel:
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName:       cfg.RedisSentinelMaster,
			SentinelAddrs:    trimmed(cfg.RedisSentinelAddrs),
			SentinelPassword: cfg.RedisSentinelPassword,
			Password:         cfg.RedisPassword,
			DB:               cfg.RedisDB,
			PoolSize:         poolSize,
			TLSConfig:        TLSConfig(cfg),
		})
	case Cluster:
		return redis.NewClusterClient(&redis.ClusterOptions{
			Addrs:     trimmed(cfg.RedisClusterAddrs),
			Password:  cfg.RedisPassword,
			PoolSize:  poolSize,
			TLSConfig: TLSConfig(cfg),
		})
	default:
		return redis.NewClient(&redis.Options{
			Addr:      cfg.RedisAddr(),
			Password:  cfg.RedisPassword,
			DB:        cfg.RedisDB,
			PoolSize:  poolSize,
			TLSConfig: TLSConfig(cfg),
		})
	}
}
