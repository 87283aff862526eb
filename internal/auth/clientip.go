package auth

import (
	"net/netip"
	"strings"
)

// ParsePrefixes turns TRUSTED_PROXIES entries (addresses or CIDR ranges,
// which config.Load has validated) into prefixes; an entry that does not
// parse is skipped.
func ParsePrefixes(list []string) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		if a, err := netip.ParseAddr(s); err == nil {
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return out
}

func trustedAddr(a netip.Addr, trusted []netip.Prefix) bool {
	a = a.Unmap()
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// maxForwardedHops bounds how many X-Forwarded-For entries are looked at;
// a real chain of proxies is a handful long.
const maxForwardedHops = 32

// ClientIP is the address a request comes from. From a peer that is not a
// trusted proxy it is the peer, whatever X-Forwarded-For says (anyone can
// write that header). Behind a trusted proxy it is the right-most address
// of X-Forwarded-For (xff, its lines joined by commas) that is not itself
// a trusted proxy: each proxy appends the address it was reached from, so
// everything to the left of the first untrusted one was written by the
// client and proves nothing. An entry that is not an address ends the walk
// at the last address known good (the proxy that wrote it); when every
// entry is a trusted proxy, the left-most one is the client.
func ClientIP(peer netip.Addr, xff string, trusted []netip.Prefix) netip.Addr {
	peer = peer.Unmap()
	if !trustedAddr(peer, trusted) || strings.TrimSpace(xff) == "" {
		return peer
	}
	entries := strings.Split(xff, ",")
	client := peer
	for i, hops := len(entries)-1, 0; i >= 0 && hops < maxForwardedHops; i, hops = i-1, hops+1 {
		a, ok := parseForwarded(entries[i])
		if !ok {
			return client
		}
		if !trustedAddr(a, trusted) {
			return a
		}
		client = a
	}
	return client
}

// parseForwarded reads one X-Forwarded-For entry: an address, possibly
// with a port ("192.0.2.1:4711", "[2001:db8::1]:4711").
func parseForwarded(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Addr().Zone() == "" {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}
