package config

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration read from YAML as a Go duration ("30s",
// "8h") or, as in seed 000's JSON, a bare number of seconds.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a duration like 30s or a number of seconds", n.Line)
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// ParseDuration reads "30s", "1h30m" or a bare number of seconds.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if secs, err := strconv.ParseFloat(s, 64); err == nil {
		if secs < 0 {
			return 0, fmt.Errorf("duration %q is negative", s)
		}
		// A float beyond int64 converts to garbage, not an error; the
		// timing contract sums these durations.
		if secs*float64(time.Second) >= math.MaxInt64 || math.IsNaN(secs) {
			return 0, fmt.Errorf("duration %q is too long (at most %s)", s, time.Duration(math.MaxInt64))
		}
		return time.Duration(secs * float64(time.Second)), nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (use 30s, 5m, 8h or a number of seconds)", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("duration %q is negative", s)
	}
	return v, nil
}

// List is a list of strings read from a YAML sequence or, as in seed 000,
// one comma-separated string.
type List []string

// UnmarshalYAML implements yaml.Unmarshaler.
func (l *List) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*l = splitList(n.Value)
		return nil
	case yaml.SequenceNode:
		var items []string
		if err := n.Decode(&items); err != nil {
			return err
		}
		*l = items
		return nil
	}
	return fmt.Errorf("line %d: want a list or a comma-separated string", n.Line)
}

// String joins the list with commas, as seed 000's JSON does.
func (l List) String() string { return strings.Join(l, ",") }

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Secret is a password or key. In YAML it is written as "env:NAME" (read
// from the environment), "file:/path" (read from a file, trailing newline
// dropped) or a literal. It never prints its value.
type Secret struct {
	value  string
	source string
}

// NewSecret returns a literal secret, for tests and generated configs.
func NewSecret(v string) Secret { return Secret{value: v, source: "literal"} }

// Value returns the secret itself. Call it only where the secret is used.
func (s Secret) Value() string { return s.value }

// IsSet reports whether a value was configured.
func (s Secret) IsSet() bool { return s.value != "" }

// String masks the value so a Secret can be logged or printed safely.
func (s Secret) String() string {
	if s.value == "" {
		return ""
	}
	return "********"
}

// MarshalYAML keeps the reference (env:/file:) but never the value.
func (s Secret) MarshalYAML() (any, error) {
	if strings.HasPrefix(s.source, "env:") || strings.HasPrefix(s.source, "file:") {
		return s.source, nil
	}
	return s.String(), nil
}

// MarshalJSON masks the value.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(s.String())), nil }

// UnmarshalYAML implements yaml.Unmarshaler and resolves env: and file:.
func (s *Secret) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want env:NAME, file:/path or a literal", n.Line)
	}
	v, err := resolveSecret(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*s = Secret{value: v, source: n.Value}
	return nil
}

func resolveSecret(ref string) (string, error) {
	switch {
	case strings.HasPrefix(ref, "env:"):
		name := strings.TrimPrefix(ref, "env:")
		v, ok := os.LookupEnv(name)
		if !ok {
			return "", fmt.Errorf("environment variable %s is not set", name)
		}
		return v, nil
	case strings.HasPrefix(ref, "file:"):
		path := strings.TrimPrefix(ref, "file:")
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("read secret file: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return ref, nil
}
