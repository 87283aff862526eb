package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// poster makes the project's webhook call from the River peer: the same
// method, body, headers and connection pool settings as the project's
// webhook client (internal/webhook), written out here because this module
// must not import the product's.
type poster struct {
	url, authHeader, authKey string
	http                     *http.Client
}

func newPoster(url, authHeader, authKey string, timeout time.Duration, conns int) *poster {
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          conns,
		MaxIdleConnsPerHost:   conns,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		ForceAttemptHTTP2:     true,
	}
	return &poster{url: url, authHeader: authHeader, authKey: authKey, http: &http.Client{
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}}
}

func (p *poster) close() { p.http.CloseIdleConnections() }

// post delivers one message and returns the receiver's messageId ("" when
// its answer has none). Any answer but a 2xx is an error.
func (p *poster) post(ctx context.Context, m MessageArgs) (string, error) {
	payload, err := json.Marshal(struct {
		To      string `json:"to"`
		Content string `json:"content"`
	}{m.To, m.Content})
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(payload))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Idempotency-Key", m.ID)
	if p.authKey != "" {
		req.Header.Set(p.authHeader, p.authKey)
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("webhook call: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", fmt.Errorf("webhook answered %d", resp.StatusCode)
	}
	if err != nil {
		return "", nil // accepted: a retry would deliver it twice
	}
	var answer struct {
		MessageID string `json:"messageId"`
	}
	if json.Unmarshal(body, &answer) != nil {
		return "", nil
	}
	return answer.MessageID, nil
}
