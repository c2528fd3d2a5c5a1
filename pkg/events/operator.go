package events

// ConfigUpdated records that an operator re-read and validated a site's
// configuration file (seed 000 `toolkit config update`). The running site
// process of Site restarts its services on the new file when SHA256 differs
// from the file it runs; the other events of the log are untouched.
type ConfigUpdated struct {
	Path string `json:"path" validate:"required,max=1024"`
	// SHA256 is the hex digest of the file's bytes.
	SHA256 string `json:"sha256" validate:"required,len=64,hexadecimal"`
	// Changed names the api v1 config sections whose rendering (secrets
	// masked) differs from the previous ConfigUpdated of this site; empty
	// on the first one.
	Changed []string `json:"changed,omitempty"`
	// Sections holds the hex SHA-256 of each section's rendering, the
	// baseline the next update is compared with.
	Sections map[string]string `json:"sections" validate:"required"`
	By       string            `json:"by" validate:"required,max=128"`
}

// EventType implements Event.
func (ConfigUpdated) EventType() Type { return "ConfigUpdated" }
