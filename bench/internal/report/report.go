// Package report holds the benchmark's results and renders them as a
// terminal table, Markdown and JSON.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/drwatch/drwatch/bench/internal/stats"
)

// Drwatch is the tool name every peer is compared with.
const Drwatch = "drwatch"

// Report is one run of the harness.
type Report struct {
	Generated time.Time `json:"generated"`
	Command   string    `json:"command"`
	Host      string    `json:"host"`
	Settings  []Setting `json:"settings"`
	Metrics   []Metric  `json:"metrics"`
	Micro     []Micro   `json:"micro"`
	// Notes say what could not be measured, and why.
	Notes []string `json:"notes"`
}

// Setting is one timer or option a tool was configured with.
type Setting struct {
	Tool    string `json:"tool"`
	Setting string `json:"setting"`
	Value   string `json:"value"`
}

// Metric is one failover figure of one tool over several runs.
type Metric struct {
	Metric  string        `json:"metric"`
	Tool    string        `json:"tool"`
	Unit    string        `json:"unit"`
	Summary stats.Summary `json:"summary"`
	Note    string        `json:"note,omitempty"`
}

// Micro is one of drwatch's own figures (bus, notifier, arbiter).
type Micro struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	Note  string  `json:"note,omitempty"`
}

// Comparison is drwatch's median over a peer's, and its p99 over the
// peer's, for one metric.
type Comparison struct {
	Metric string `json:"metric"`
	Peer   string `json:"peer"`
	// Ratio (medians) and P99Ratio are nil when either side has no figure
	// or the peer's is zero.
	Ratio    *float64 `json:"ratio"`
	P99Ratio *float64 `json:"p99Ratio"`
}

// Setf records a setting.
func (r *Report) Setf(tool, setting, format string, args ...any) {
	r.Settings = append(r.Settings, Setting{Tool: tool, Setting: setting, Value: fmt.Sprintf(format, args...)})
}

// Notef records what could not be measured and why.
func (r *Report) Notef(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// Comparisons pairs drwatch's figure of each metric with every peer's.
func (r *Report) Comparisons() []Comparison {
	var out []Comparison
	for _, m := range r.Metrics {
		if m.Tool == Drwatch {
			continue
		}
		c := Comparison{Metric: m.Metric, Peer: m.Tool}
		if d, ok := r.find(m.Metric, Drwatch); ok && d.Summary.OK() && m.Summary.OK() {
			c.Ratio = ratioOf(d.Summary.Median, m.Summary.Median)
			c.P99Ratio = ratioOf(d.Summary.P99, m.Summary.P99)
		}
		out = append(out, c)
	}
	return out
}

func ratioOf(a, b float64) *float64 {
	if v := stats.Ratio(a, b); !math.IsNaN(v) {
		return &v
	}
	return nil
}

func (r *Report) find(metric, tool string) (Metric, bool) {
	for _, m := range r.Metrics {
		if m.Metric == metric && m.Tool == tool {
			return m, true
		}
	}
	return Metric{}, false
}

// ratios are the drwatch/peer cells of a metric row (medians, p99s): "—"
// for drwatch's own row, "both 0" when neither side lost or counted
// anything (a ratio of 0 to 0 is no figure, but the outcome is equal),
// "n/a" when a side has no figure or only the peer's is zero.
func (r *Report) ratios(m Metric) (median, p99 string) {
	if m.Tool == Drwatch {
		return "—", "—"
	}
	d, ok := r.find(m.Metric, Drwatch)
	if !ok || !d.Summary.OK() || !m.Summary.OK() {
		return "n/a", "n/a"
	}
	cell := func(a, b float64) string {
		if a == 0 && b == 0 {
			return "both 0"
		}
		if v := ratioOf(a, b); v != nil {
			return strconv.FormatFloat(*v, 'f', 2, 64)
		}
		return "n/a"
	}
	return cell(d.Summary.Median, m.Summary.Median), cell(d.Summary.P99, m.Summary.P99)
}

// Num formats a figure: integers as such, others with up to 1 decimal.
func Num(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

func (r *Report) metricCells(m Metric) []string {
	med, p99 := "—", "—"
	if m.Summary.OK() {
		med, p99 = Num(m.Summary.Median), Num(m.Summary.P99)
	}
	runs := strconv.Itoa(m.Summary.Runs)
	if m.Summary.Failed > 0 {
		runs += fmt.Sprintf(" (%d failed)", m.Summary.Failed)
	}
	rMed, rP99 := r.ratios(m)
	return []string{m.Metric, m.Tool, m.Unit, med, p99, runs, rMed, rP99, m.Note}
}

var metricHeader = []string{"metric", "tool", "unit", "median", "p99", "runs", "drwatch/peer median", "drwatch/peer p99", "note"}

// WriteText writes the report as aligned plain-text tables.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	line := func(cells []string) { fmt.Fprintln(tw, strings.Join(cells, "\t")) }
	fmt.Fprintf(tw, "drwatch benchmark — %s — %s\n\n", r.Generated.UTC().Format(time.RFC3339), r.Host)
	line(metricHeader)
	for _, m := range r.Metrics {
		line(r.metricCells(m))
	}
	fmt.Fprintln(tw)
	line([]string{"micro (drwatch)", "value", "unit", "note"})
	for _, m := range r.Micro {
		line([]string{m.Name, Num(m.Value), m.Unit, m.Note})
	}
	fmt.Fprintln(tw)
	line([]string{"tool", "setting", "value"})
	for _, s := range r.Settings {
		line([]string{s.Tool, s.Setting, s.Value})
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Notes) > 0 {
		fmt.Fprintln(w, "\nnot measured / caveats:")
		for _, n := range r.Notes {
			fmt.Fprintf(w, "  - %s\n", n)
		}
	}
	return nil
}

// mdEscape keeps a cell inside its Markdown table column.
func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

func mdRow(w io.Writer, cells []string) {
	for i := range cells {
		cells[i] = mdEscape(cells[i])
	}
	fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
}

func mdHeader(w io.Writer, cells []string) {
	mdRow(w, append([]string(nil), cells...))
	seps := make([]string, len(cells))
	for i := range seps {
		seps[i] = "---"
	}
	fmt.Fprintf(w, "|%s|\n", strings.Join(seps, "|"))
}

// WriteMarkdown writes the report as Markdown tables.
func (r *Report) WriteMarkdown(w io.Writer) error {
	fmt.Fprintf(w, "# drwatch benchmark results\n\nGenerated %s on %s by `%s`.\n\n", r.Generated.UTC().Format(time.RFC3339), r.Host, r.Command)
	fmt.Fprintf(w, "## Failover, side by side\n\nMedian and p99 over the runs (p99 is nearest-rank: over fewer than 100 runs it is the worst run). drwatch/peer is the ratio of medians, and of p99s: below 1 drwatch is faster (or loses less); \"both 0\" means neither lost anything there.\n\n")
	mdHeader(w, metricHeader)
	for _, m := range r.Metrics {
		mdRow(w, r.metricCells(m))
	}
	fmt.Fprintf(w, "\n## drwatch's own figures\n\n")
	mdHeader(w, []string{"measure", "value", "unit", "note"})
	for _, m := range r.Micro {
		mdRow(w, []string{m.Name, Num(m.Value), m.Unit, m.Note})
	}
	fmt.Fprintf(w, "\n## Settings\n\n")
	mdHeader(w, []string{"tool", "setting", "value"})
	for _, s := range r.Settings {
		mdRow(w, []string{s.Tool, s.Setting, s.Value})
	}
	if len(r.Notes) > 0 {
		fmt.Fprintf(w, "\n## Not measured, and caveats\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(w, "- %s\n", n)
		}
	}
	return nil
}

// WriteJSON writes the report and its comparisons as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		*Report
		Comparisons []Comparison `json:"comparisons"`
	}{r, r.Comparisons()})
}
