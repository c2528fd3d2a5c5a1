package timeline

import (
	"fmt"
	"html/template"
	"io"
	"text/tabwriter"
	"time"
)

// WriteText prints the timeline: one line per event, then the saga's plan.
func WriteText(w io.Writer, tl Timeline) error {
	fmt.Fprintf(w, "%s\n", tl.Title)
	if len(tl.Entries) == 0 {
		_, err := fmt.Fprintln(w, "no event matches")
		return err
	}
	fmt.Fprintf(w, "from %s to %s (%s)\n\n", tl.Entries[0].Time.Format(time.RFC3339Nano), tl.Entries[len(tl.Entries)-1].Time.Format(time.RFC3339Nano), tl.Entries[len(tl.Entries)-1].Offset)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\t+OFFSET\tSITE\tSERVICE\tEVENT\t\tWHAT")
	for _, e := range tl.Entries {
		mark := ""
		if e.Failed {
			mark = "!"
		}
		fmt.Fprintf(tw, "%d\t%s\t+%s\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.Time.UTC().Format("15:04:05.000"), e.Offset.Round(time.Millisecond), e.Site, e.Service, e.Type, mark, e.Summary)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(tl.Steps) > 0 {
		fmt.Fprintf(w, "\nfailover steps (%s):\n", tl.Outcome)
		for i, s := range tl.Steps {
			fmt.Fprintf(w, "  %d. %-20s %-12s %8s  %s\n", i+1, s.Name, s.Status, s.Duration.Round(time.Millisecond), s.Detail)
		}
	}
	return nil
}

// WriteHTML writes a self-contained page: inline style, no script, no
// outside resource, so it can be mailed or attached to an incident report.
func WriteHTML(w io.Writer, tl Timeline) error {
	return page.Execute(w, tl)
}

var page = template.Must(template.New("timeline").Funcs(template.FuncMap{
	"ts":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000") },
	"dur": func(d time.Duration) string { return d.Round(time.Millisecond).String() },
	"inc": func(i int) int { return i + 1 },
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{{.Title}}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.3em}
table{border-collapse:collapse;width:100%;margin-bottom:2em}
th,td{border-bottom:1px solid #ddd;padding:.3em .6em;text-align:left;vertical-align:top;font-size:.9em}
th{background:#f4f4f4}
tr.failed td{background:#fde8e8}
td.mono{font-family:ui-monospace,monospace;white-space:nowrap}
.done{color:#176317}.failed{color:#a11}.notreached{color:#777}
</style></head>
<body>
<h1>{{.Title}}</h1>
{{if .Entries}}<p>{{len .Entries}} events, from {{ts (index .Entries 0).Time}} UTC.</p>
<table id="events">
<tr><th>seq</th><th>time (UTC)</th><th>+offset</th><th>site</th><th>service</th><th>event</th><th>what</th></tr>
{{range .Entries}}<tr class="{{if .Failed}}failed{{end}}" data-seq="{{.Seq}}"><td class="mono">{{.Seq}}</td><td class="mono">{{ts .Time}}</td><td class="mono">+{{dur .Offset}}</td><td>{{.Site}}</td><td>{{.Service}}</td><td class="mono">{{.Type}}</td><td>{{.Summary}}</td></tr>
{{end}}</table>
{{else}}<p>No event matches.</p>{{end}}
{{if .Steps}}<h2>Failover steps ({{.Outcome}})</h2>
<table id="steps">
<tr><th>#</th><th>step</th><th>status</th><th>duration</th><th>detail</th></tr>
{{range $i, $s := .Steps}}<tr data-step="{{$s.Name}}"><td>{{inc $i}}</td><td class="mono">{{$s.Name}}</td><td class="{{if eq $s.Status "done"}}done{{else if eq $s.Status "failed"}}failed{{else}}notreached{{end}}">{{$s.Status}}</td><td class="mono">{{dur $s.Duration}}</td><td>{{$s.Detail}}</td></tr>
{{end}}</table>{{end}}
</body></html>
`))
