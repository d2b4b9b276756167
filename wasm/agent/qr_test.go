//go:build !js

package agent

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestQRCodeDecodes checks the QR code with a real reader (zbarimg, from
// Debian's zbar-tools, which `make test` installs).
func TestQRCodeDecodes(t *testing.T) {
	zbar, err := exec.LookPath("zbarimg")
	if err != nil {
		t.Fatal("zbarimg is missing: apt-get install -y zbar-tools (make test does this)")
	}
	for _, host := range []string{"127.0.0.1", "relay.example.org"} {
		link, err := testInvitation(host).Link("https://wisp.example")
		if err != nil {
			t.Fatal(err)
		}
		png, err := QRCode(link, 512)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), "qr.png")
		if err := os.WriteFile(file, png, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(zbar, "--quiet", "--raw", file).Output()
		if err != nil {
			t.Fatalf("zbarimg: %v", err)
		}
		if got := strings.TrimRight(string(out), "\n"); got != link {
			t.Errorf("QR decodes to %q, want %q", got, link)
		}
	}
}
