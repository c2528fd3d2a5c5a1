package backup_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/drwatch/drwatch/services/filesync/internal/backup"
)

// BenchmarkFetch measures the standby's fetch of a fresh backup (publish
// excluded) for each transport: 3000 files of 1-8 KiB, and 2 files of
// 200 MB. Run with -benchtime=1x; see README.md for figures.
func BenchmarkFetch(b *testing.B) {
	sets := []struct {
		name string
		make func(b *testing.B, root string)
	}{
		{"small-3000x1-8KiB", func(b *testing.B, root string) { writeTree(b, root, 3000, 9) }},
		{"large-2x200MB", func(b *testing.B, root string) {
			for i := range 2 {
				writeBig(b, filepath.Join(root, fmt.Sprintf("big%d.rrd", i)), 200<<20, uint64(i))
			}
		}},
	}
	for _, set := range sets {
		root := b.TempDir()
		set.make(b, root)
		for _, tr := range transports {
			b.Run(set.name+"/"+tr.name, func(b *testing.B) {
				r := tr.new(b)
				ctx := testCtx(b)
				start := time.Now()
				pub, err := backup.Publish(ctx, r.sink, publishOpts(root))
				if err != nil {
					b.Fatal(err)
				}
				pubTook := time.Since(start)
				var files, bytes int64
				var took time.Duration
				for b.Loop() {
					dir := b.TempDir()
					start := time.Now()
					res, err := backup.Fetch(ctx, r.src, fetchOpts(dir))
					if err != nil {
						b.Fatal(err)
					}
					took += time.Since(start)
					files += int64(res.Files)
					bytes += res.Fetched
					b.StopTimer()
					os.RemoveAll(dir)
					b.StartTimer()
				}
				b.ReportMetric(float64(bytes)/1e6/took.Seconds(), "MB/s")
				b.ReportMetric(float64(files)/took.Seconds(), "files/s")
				n := float64(len(pub.Manifest.Entries))
				b.ReportMetric(float64(pub.Manifest.Bytes())/1e6/pubTook.Seconds(), "publish-MB/s")
				b.ReportMetric(n/pubTook.Seconds(), "publish-files/s")
			})
		}
	}
}
