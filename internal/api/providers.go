package api

import (
	"context"
	"net/url"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/messaging-server/messaging-server/internal/breaker"
	"github.com/messaging-server/messaging-server/internal/config"
	"github.com/messaging-server/messaging-server/internal/messaging"
)

// ProviderStatus is one provider messages are sent to (PROVIDERS, or the
// one provider default built from WEBHOOK_* when it is unset).
type ProviderStatus struct {
	Name string `json:"name" example:"primary"`
	// Host is the host and port of the provider's URL, never its path,
	// query, user info or any secret.
	Host string `json:"host" example:"sms.example.com"`
	// State is the provider's circuit breaker (closed: calls flow; open:
	// no call starts; half_open: one probe call is out), or disabled
	// after the provider answered 410, until it is enabled.
	State string `json:"state" enums:"closed,open,half_open,disabled" example:"closed"`
	// Since is when the provider entered State.
	Since time.Time `json:"since" format:"date-time" example:"2025-01-02T03:00:00Z"`
	// Reason says why it is in State.
	Reason string `json:"reason" example:"probe call succeeded"`
	// Rate is PROVIDER_<NAME>_RATE, calls per second over every worker
	// (0: no limit); Burst is PROVIDER_<NAME>_BURST.
	Rate  int `json:"rate" example:"20"`
	Burst int `json:"burst" example:"1"`
	// CallsLastMinute and FailuresLastMinute count the calls recorded
	// in the last minute, and those that did not end sent.
	CallsLastMinute    int `json:"calls_last_minute" example:"1180"`
	FailuresLastMinute int `json:"failures_last_minute" example:"3"`
}

// ProviderList is the answer of GET /api/v1/providers.
type ProviderList struct {
	Data []ProviderStatus `json:"data"`
}

// listProviders shows every provider with its state.
//
//	@Summary		List providers
//	@Description	Every provider in PROVIDERS order (one provider named default when PROVIDERS is unset): its host, its circuit breaker's state or disabled after a 410, its rate limit, and its calls and failures in the last minute.
//	@Tags			providers
//	@Produce		json
//	@Security		BearerAuth
//	@Success		200	{object}	ProviderList
//	@Failure		401	{object}	ErrorResponse	"API_KEY is set and neither the bearer API_KEY or API_READ_KEY nor a console session came with the request"
//	@Failure		429	{object}	ErrorResponse	"Rate limit reached"
//	@Failure		500	{object}	ErrorResponse
//	@Failure		431	{object}	ErrorResponse	"Request headers larger than 4 KiB"
//	@Router			/api/v1/providers [get]
func (s *Server) listProviders(c *fiber.Ctx) error {
	ctx := c.UserContext()
	calls, err := s.deps.Store.ProviderCallsLastMinute(ctx)
	if err != nil {
		return err
	}
	out := ProviderList{Data: make([]ProviderStatus, 0, len(s.cfg.ProviderList))}
	for _, p := range s.cfg.ProviderList {
		st, err := s.providerStatus(ctx, p)
		if err != nil {
			return err
		}
		st.CallsLastMinute, st.FailuresLastMinute = calls[p.Name].Calls, calls[p.Name].Failures
		out.Data = append(out.Data, st)
	}
	return c.JSON(out)
}

// enableProvider enables a provider a 410 disabled.
//
//	@Summary		Enable a provider
//	@Description	Enables a provider that answered 410 Gone, for every worker (they notice within about a second). With one provider (PROVIDERS unset or one name), a 410 pauses sending as a whole, and this starts it again like POST /api/v1/scheduler/start. Enabling an enabled provider changes nothing and answers 200.
//	@Tags			providers
//	@Produce		json
//	@Security		BearerAuth
//	@Param			name	path		string	true	"Provider name"
//	@Success		200		{object}	ProviderStatus
//	@Failure		404		{object}	ErrorResponse	"No such provider"
//	@Failure		401		{object}	ErrorResponse	"API_KEY is set and the bearer key is missing or wrong"
//	@Failure		429		{object}	ErrorResponse	"Rate limit reached"
//	@Failure		500		{object}	ErrorResponse
//	@Failure		431		{object}	ErrorResponse	"Request headers larger than 4 KiB"
//	@Router			/api/v1/providers/{name}/enable [post]
func (s *Server) enableProvider(c *fiber.Ctx) error {
	ctx := c.UserContext()
	var p *config.Provider
	for i := range s.cfg.ProviderList {
		if s.cfg.ProviderList[i].Name == c.Params("name") {
			p = &s.cfg.ProviderList[i]
		}
	}
	if p == nil {
		return messaging.ErrProviderNotFound
	}
	if _, err := s.deps.Store.ProviderBreaker(p.Name).Enable(ctx); err != nil {
		return err
	}
	if len(s.cfg.ProviderList) == 1 {
		ctl, err := s.deps.Store.Control(ctx)
		if err != nil {
			return err
		}
		if !ctl.Running && ctl.PausedReason != "" {
			if _, err := s.deps.Store.SetRunning(ctx, true, ""); err != nil {
				return err
			}
		}
	}
	s.log.Info("provider enabled", "provider", p.Name, "ip", c.IP())
	st, err := s.providerStatus(ctx, *p)
	if err != nil {
		return err
	}
	calls, err := s.deps.Store.ProviderCallsLastMinute(ctx)
	if err != nil {
		return err
	}
	st.CallsLastMinute, st.FailuresLastMinute = calls[p.Name].Calls, calls[p.Name].Failures
	return c.JSON(st)
}

// providerStatus is p's state: disabled after a 410 (with one provider,
// sending paused on its own), else its breaker's.
func (s *Server) providerStatus(ctx context.Context, p config.Provider) (ProviderStatus, error) {
	br, err := breaker.Read(ctx, s.deps.Store.ProviderBreaker(p.Name))
	if err != nil {
		return ProviderStatus{}, err
	}
	st := ProviderStatus{Name: p.Name, Host: hostOf(p.URL), State: string(br.State), Since: br.Since, Reason: br.Reason,
		Rate: p.Rate, Burst: p.Burst}
	switch {
	case br.Disabled != "":
		st.State, st.Since, st.Reason = breaker.Disabled, br.DisabledAt, br.Disabled
	case len(s.cfg.ProviderList) == 1:
		ctl, err := s.deps.Store.Control(ctx)
		if err != nil {
			return ProviderStatus{}, err
		}
		if !ctl.Running && ctl.PausedReason != "" {
			st.State, st.Since, st.Reason = breaker.Disabled, ctl.UpdatedAt.UTC(), ctl.PausedReason
		}
	}
	return st, nil
}

// hostOf is the host and port of a provider's URL: never its path, query,
// user info or anything else that may carry a secret.
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host
}
