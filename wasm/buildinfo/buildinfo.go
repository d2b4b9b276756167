// Package buildinfo reports the version of the Wisp core and how it was
// built, for the UI's "about" line and for bug reports.
//
//	info := buildinfo.Read()
//	fmt.Println(info.Version, info.Revision)
package buildinfo

import "runtime/debug"

// Version is the version of the Wisp core. It changes with every release
// and whenever a stored format or wire version changes.
const Version = "0.1.0"

// Info describes the running core.
type Info struct {
	Version  string `json:"version"`
	Go       string `json:"go"`
	Platform string `json:"platform"`
	// Revision is the VCS commit the core was built from, when known.
	Revision string `json:"revision,omitempty"`
	// Modified reports uncommitted changes at build time.
	Modified bool `json:"modified,omitempty"`
	// Time is the commit time (RFC 3339), when known.
	Time string `json:"time,omitempty"`
}

// Read returns the Info of the running binary.
func Read() Info {
	info := Info{Version: Version}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return info
	}
	info.Go = bi.GoVersion
	var goos, goarch string
	for _, s := range bi.Settings {
		switch s.Key {
		case "GOOS":
			goos = s.Value
		case "GOARCH":
			goarch = s.Value
		case "vcs.revision":
			info.Revision = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		case "vcs.time":
			info.Time = s.Value
		}
	}
	if goos != "" {
		info.Platform = goos + "/" + goarch
	}
	return info
}
