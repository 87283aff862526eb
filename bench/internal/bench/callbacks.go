package bench

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// callbackReceiver is a local status callback receiver that accepts every
// event with 204 and counts them.
type callbackReceiver struct {
	srv      *http.Server
	url      string
	done     chan struct{}
	accepted atomic.Int64
}

func startCallbackReceiver(ctx context.Context) (*callbackReceiver, error) {
	r := &callbackReceiver{done: make(chan struct{})}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r.url = "http://" + ln.Addr().String() + "/events"
	r.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		r.accepted.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(r.done)
		if err := r.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			panic(err) // Serve on a fresh listener fails only on programming errors
		}
	}()
	return r, nil
}

func (r *callbackReceiver) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = r.srv.Shutdown(ctx)
	<-r.done
}
