// Package script runs seed 000's custom failure-detection script and reads
// its answer. The script gets the `jmp-dr api v1 config` JSON on stdin and
// in the file named by DRWATCH_CONFIG_JSON; it must print one JSON object:
//
//	{"state": "active|standby", "action": "beActive|beStandby|nothing|wait",
//	 "description": "...", "payload": {"waitTime": "2025-03-01 12:00+00:00", "details": {...}}}
//
// Anything else — a hang, a non-zero exit, output that breaks the contract —
// is an *Error, which the service reports and never turns into a role change.
package script

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/drwatch/drwatch/pkg/events"
)

// EnvConfigJSON names the variable holding the path of the config JSON file.
const EnvConfigJSON = "DRWATCH_CONFIG_JSON"

// Answer is a script's verdict.
type Answer struct {
	State       events.Role
	Action      events.Action
	Description string
	// WaitUntil is payload.waitTime, nil when empty.
	WaitUntil *time.Time
	// Details is payload.details verbatim (a JSON object), nil when absent.
	Details json.RawMessage
}

// Error is a script that gave no usable answer.
type Error struct {
	Reason string
	// Output is the start of what the script printed (stdout, then stderr).
	Output string
}

func (e *Error) Error() string { return e.Reason }

// maxOutput bounds what is kept of a script's output; an answer is small.
const maxOutput = 64 << 10

// OutputExcerpt is how much of the output goes into the error event.
const OutputExcerpt = 1024

// Runner runs one script.
type Runner struct {
	Path    string
	Timeout time.Duration
	// TempDir holds the config JSON file for the run; default os.TempDir().
	TempDir string
}

// Run executes the script with config on stdin and in $DRWATCH_CONFIG_JSON.
// On timeout the whole process group is killed, so a script's children do
// not outlive it.
func (r Runner) Run(ctx context.Context, config []byte) (Answer, error) {
	f, err := os.CreateTemp(r.TempDir, "drwatch-config-*.json")
	if err != nil {
		return Answer{}, &Error{Reason: fmt.Sprintf("write the config JSON for the script: %v", err)}
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(config); err != nil {
		f.Close()
		return Answer{}, &Error{Reason: fmt.Sprintf("write the config JSON for the script: %v", err)}
	}
	if err := f.Close(); err != nil {
		return Answer{}, &Error{Reason: fmt.Sprintf("write the config JSON for the script: %v", err)}
	}

	tctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	// Exec'd directly: the script names its interpreter (sh, bash, perl,
	// python) in its shebang, as the seed expects.
	cmd := exec.CommandContext(tctx, r.Path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A grandchild that escaped the group and keeps stdout open must not
	// hold us past the timeout either.
	cmd.WaitDelay = time.Second
	cmd.Env = append(os.Environ(), EnvConfigJSON+"="+f.Name())
	cmd.Stdin = bytes.NewReader(config)
	var stdout, stderr capped
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	printed := excerpt(stdout.String(), stderr.String())
	switch {
	case tctx.Err() == context.DeadlineExceeded && ctx.Err() == nil:
		return Answer{}, &Error{Reason: fmt.Sprintf("script %s did not finish within scriptTimeout %s and was killed with its process group", r.Path, r.Timeout), Output: printed}
	case ctx.Err() != nil:
		return Answer{}, ctx.Err()
	case err != nil:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return Answer{}, &Error{Reason: fmt.Sprintf("script %s failed: %v", r.Path, ee), Output: printed}
		}
		return Answer{}, &Error{Reason: fmt.Sprintf("script %s could not run: %v (it must be executable and start with a #! line)", r.Path, err), Output: printed}
	}
	a, err := Parse(stdout.Bytes())
	if err != nil {
		return Answer{}, &Error{Reason: fmt.Sprintf("script %s printed output that is not the failure-detection contract: %v", r.Path, err), Output: printed}
	}
	return a, nil
}

func excerpt(stdout, stderr string) string {
	s := stdout
	if strings.TrimSpace(stderr) != "" {
		s += "\n[stderr]\n" + stderr
	}
	if len(s) > OutputExcerpt {
		s = s[:OutputExcerpt] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

type capped struct{ bytes.Buffer }

func (c *capped) Write(p []byte) (int, error) {
	if room := maxOutput - c.Len(); room < len(p) {
		if room > 0 {
			c.Buffer.Write(p[:room])
		}
		return len(p), nil
	}
	return c.Buffer.Write(p)
}

// waitTimeLayouts are the forms of payload.waitTime accepted: the seed's
// "YYYY-MM-DD HH:MM+00:00" and its near relatives. No zone means UTC, as
// the seed specifies UTC.
var waitTimeLayouts = []string{
	"2006-01-02 15:04Z07:00",
	"2006-01-02T15:04Z07:00",
	"2006-01-02 15:04:05Z07:00",
	time.RFC3339,
	"2006-01-02 15:04",
	"2006-01-02T15:04",
	"2006-01-02 15:04:05",
	"2006-01-02",
}

// Parse reads a script's stdout against the contract (seed 000 table 2).
func Parse(out []byte) (Answer, error) {
	var raw struct {
		State       *string `json:"state"`
		Action      *string `json:"action"`
		Description *string `json:"description"`
		Payload     *struct {
			WaitTime *string         `json:"waitTime"`
			Details  json.RawMessage `json:"details"`
		} `json:"payload"`
	}
	trimmed := bytes.TrimSpace(out)
	if len(trimmed) == 0 {
		return Answer{}, errors.New("nothing printed; want one JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if err := dec.Decode(&raw); err != nil {
		return Answer{}, fmt.Errorf("not a JSON object: %v", err)
	}
	if dec.More() {
		return Answer{}, errors.New("more than one JSON value printed; want exactly one object")
	}
	var a Answer
	switch {
	case raw.State == nil:
		return a, errors.New(`"state" is required (active or standby)`)
	case *raw.State == "":
		return a, errors.New(`"state" must not be empty (active or standby)`)
	case *raw.State != string(events.RoleActive) && *raw.State != string(events.RoleStandby):
		return a, fmt.Errorf(`"state" %q must be active or standby`, *raw.State)
	}
	a.State = events.Role(*raw.State)
	switch {
	case raw.Action == nil:
		return a, errors.New(`"action" is required (beActive, beStandby, nothing or wait)`)
	case *raw.Action == "":
		return a, errors.New(`"action" must not be empty (beActive, beStandby, nothing or wait)`)
	}
	switch act := events.Action(*raw.Action); act {
	case events.ActionBeActive, events.ActionBeStandby, events.ActionNothing, events.ActionWait:
		a.Action = act
	default:
		return a, fmt.Errorf(`"action" %q must be beActive, beStandby, nothing or wait`, *raw.Action)
	}
	if raw.Description == nil {
		return a, errors.New(`"description" is required (it may be an empty string)`)
	}
	a.Description = *raw.Description
	if raw.Payload == nil {
		return a, errors.New(`"payload" is required: an object with "waitTime" (may be "") and "details"`)
	}
	if raw.Payload.WaitTime == nil {
		return a, errors.New(`"payload.waitTime" is required (a string, "" when not waiting)`)
	}
	if wt := strings.TrimSpace(*raw.Payload.WaitTime); wt != "" {
		t, err := parseWaitTime(wt)
		if err != nil {
			return a, err
		}
		a.WaitUntil = &t
	} else if a.Action == events.ActionWait {
		return a, errors.New(`action "wait" needs "payload.waitTime" (YYYY-MM-DD HH:MM+00:00, UTC)`)
	}
	if d := bytes.TrimSpace(raw.Payload.Details); len(d) > 0 && !bytes.Equal(d, []byte("null")) {
		if d[0] != '{' {
			return a, fmt.Errorf(`"payload.details" must be a JSON object, got %.40s`, d)
		}
		a.Details = json.RawMessage(d)
	}
	return a, nil
}

func parseWaitTime(s string) (time.Time, error) {
	for _, l := range waitTimeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf(`"payload.waitTime" %q is not a time; want YYYY-MM-DD HH:MM+00:00 (UTC)`, s)
}
