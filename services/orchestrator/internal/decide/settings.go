package decide

import (
	"fmt"

	"github.com/drwatch/drwatch/pkg/events"
)

// SettingsDiffer compares this site's pair-wide settings with the peer's
// (events.PairSettings) and describes each key whose value differs or
// that only one side records, in key order of own then peer. Nil when
// either side has recorded none yet, or they agree.
func SettingsDiffer(own, peer []events.Setting, peerName events.SiteID) []string {
	if len(own) == 0 || len(peer) == 0 {
		return nil
	}
	theirs := make(map[string]string, len(peer))
	for _, s := range peer {
		theirs[s.Key] = s.Value
	}
	var out []string
	seen := make(map[string]bool, len(own))
	for _, s := range own {
		seen[s.Key] = true
		v, ok := theirs[s.Key]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s is %s here and not recorded by site %s (an older version?)", s.Key, s.Value, peerName))
		case v != s.Value:
			out = append(out, fmt.Sprintf("%s is %s here and %s on site %s: both sites must read a failure alike", s.Key, s.Value, v, peerName))
		}
	}
	for _, s := range peer {
		if !seen[s.Key] {
			out = append(out, fmt.Sprintf("%s is %s on site %s and not recorded here (an older version?)", s.Key, s.Value, peerName))
		}
	}
	return out
}
