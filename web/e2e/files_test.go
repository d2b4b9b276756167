//go:build e2e

package e2e

import (
	"crypto/rand"
	"crypto/sha256"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
)

// hostWithTwoRelays starts two relays and a host offering both.
func hostWithTwoRelays(t testing.TB) (*proc, string) {
	t.Helper()
	_, relayA := startRelay(t)
	_, relayB := startRelay(t)
	return startHost(t, "-relay", relayA, "-relay", relayB)
}

// allowDownloads saves p's downloads into a new folder and returns it.
func allowDownloads(t testing.TB, p *tab) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := chromedp.CallBrowser(p.ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir,
		BrowserContextID: chromedp.FromContext(p.ctx).BrowserContextID,
	}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// waitFile waits for a completed download named name in dir.
func waitFile(t testing.TB, dir, name string) []byte {
	t.Helper()
	deadline := time.Now().Add(scaled(60 * time.Second))
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
			if _, err := os.Stat(filepath.Join(dir, name+".crdownload")); err != nil {
				return b
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s was not saved", name)
	return nil
}

// TestFiles: Alice sends a 2 MiB PNG and a 20 MiB binary with the file
// dialog; Bob sees the preview at once, the picture downloads by itself,
// the binary on "Download", and both save byte for byte.
func TestFiles(t *testing.T) {
	host, base := hostWithTwoRelays(t)
	a, b := aliceAndBob(t, base)

	dir := t.TempDir()
	img := image.NewNRGBA(image.Rect(0, 0, 740, 740))
	noise := make([]byte, len(img.Pix))
	if _, err := rand.Read(noise); err != nil {
		t.Fatal(err)
	}
	for i := range img.Pix {
		img.Pix[i] = noise[i]
		if i%4 == 3 {
			img.Pix[i] = 255
		}
	}
	img.Set(0, 0, color.NRGBA{255, 0, 0, 255})
	pngPath := filepath.Join(dir, "photo.png")
	f, err := os.Create(pngPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	f.Close()
	binPath := filepath.Join(dir, "archive.bin")
	bin := make([]byte, 20<<20)
	if _, err := rand.Read(bin); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(binPath, bin, 0o644); err != nil {
		t.Fatal(err)
	}
	pngData, _ := os.ReadFile(pngPath)
	t.Logf("picture %d bytes, binary %d bytes", len(pngData), len(bin))

	start := time.Now()
	a.attach("the whole archive", pngPath, binPath) // the caption goes with the last file
	a.waitJS(`[...document.querySelectorAll("#messages .msg.out[data-file]")].length === 2`, 120*time.Second, "both files sent")
	b.waitJS(`document.querySelector("#messages .msg.in[data-file] img.thumb, #messages .msg.in[data-file] img.picture") !== null`, 60*time.Second, "the preview")
	b.waitJS(`[...document.querySelectorAll("#messages .msg.in[data-file='downloaded']")].length === 1`, 60*time.Second, "the picture downloads by itself")
	// The sender sees the picture she sent at full size, and can save it.
	a.waitJS(`(() => { const i = document.querySelector("#messages .msg.out[data-file] img.picture"); return !!i && i.complete && i.naturalWidth === 740 })()`, 30*time.Second, "the sender's own picture")
	a.waitJS(`[...document.querySelectorAll("#messages .msg.out .file-actions button")].some(b => b.getAttribute("aria-label") === "Save photo.png")`, 10*time.Second, "Save on the sender's side")
	// Downloaded, the picture shows at full resolution, not the preview.
	b.waitJS(`(() => { const i = document.querySelector("#messages .msg.in[data-file='downloaded'] img.picture"); return !!i && i.src.startsWith("blob:") && i.complete && i.naturalWidth === 740 })()`, 30*time.Second, "the picture at full resolution")
	// The view stayed at the bottom as it loaded.
	b.waitJS(`(() => { const l = document.querySelector("#messages"); return l.scrollHeight - l.scrollTop - l.clientHeight < 60 })()`, 10*time.Second, "the view at the bottom")
	b.click("Download")
	b.waitJS(`[...document.querySelectorAll("#messages .msg.in[data-file='downloaded']")].length === 2`, 120*time.Second, "the binary downloaded")
	// The two uploads run side by side, so either may arrive first.
	if c := eval[string](b, `[...document.querySelectorAll("#messages .msg.in[data-file]")].map(li => li.querySelector(".text").textContent + "=" + (li.querySelector(".caption")?.textContent ?? "")).sort().join("|")`); c != "archive.bin=the whole archive|photo.png=" {
		t.Errorf("the captions Bob sees: %q", c)
	}
	t.Logf("2 files (%.1f MiB) from Alice's pick to Bob's Save in %v", float64(len(pngData)+len(bin))/(1<<20), time.Since(start).Round(time.Millisecond))
	b.screenshot(t.Name() + "-received")

	downloads := allowDownloads(t, b)
	eval[bool](b, `(() => { [...document.querySelectorAll("#messages .file-actions button")].filter(x => x.textContent === "Save").forEach(x => x.click()); return true })()`)
	for name, want := range map[string][]byte{"photo.png": pngData, "archive.bin": bin} {
		got := waitFile(t, downloads, name)
		if sha256.Sum256(got) != sha256.Sum256(want) {
			t.Errorf("%s saved with %d bytes and another SHA-256", name, len(got))
		}
	}
	b.checkA11y("conversation with files")

	// A reload in the middle of a download: it resumes from the chunks
	// already stored and completes.
	a.attach("", binPath)
	b.waitJS(`document.querySelector("#messages .msg.in[data-file='available']") !== null`, 60*time.Second, "a second binary")
	b.click("Download")
	b.waitJS(`(() => { const p = document.querySelector("#messages .msg.in .transfer progress"); return p && p.value > 0 && p.value < p.max })()`, 60*time.Second, "the download under way")
	// The progress counts the file's own size, not its padded chunks.
	b.waitJS(`/ of 20\.0 MiB/.test(document.querySelector("#messages .msg.in .transfer .meta")?.textContent ?? "")`, 30*time.Second, "the progress of 20.0 MiB")
	b.run(chromedp.Reload())
	b.waitVisible("#app")
	b.openContact("Alice")
	b.waitJS(`document.querySelector("#messages .msg.in[data-file='available'], #messages .msg.in[data-file='failed']") !== null`, 30*time.Second, "the unfinished download")
	// It says how much is already here.
	b.waitJS(`[...document.querySelectorAll("#messages .file-actions button")].some(x => /^Resume download — [0-9.]+ MiB of 20.0 MiB already here$/.test(x.textContent))`, 30*time.Second, "Resume download with the part stored")
	eval[bool](b, `(() => { [...document.querySelectorAll("#messages .file-actions button")].find(x => x.textContent.startsWith("Resume download")).click(); return true })()`)
	b.waitJS(`[...document.querySelectorAll("#messages .msg.in[data-file='downloaded']")].length === 3`, 120*time.Second, "the resumed download")

	// A file over 1 GiB is refused before any upload.
	huge := filepath.Join(dir, "huge.iso")
	hf, err := os.Create(huge)
	if err != nil {
		t.Fatal(err)
	}
	if err := hf.Truncate(1<<30 + 1); err != nil {
		t.Fatal(err)
	}
	hf.Close()
	a.run(chromedp.SetUploadFiles(chromedp.CSS("#attach-input"), []string{huge}))
	a.waitJS(`document.querySelector("dialog.preview")?.textContent.includes("too large, Wisp sends files up to 1 GiB") && document.querySelector("dialog.preview button[type=submit]").disabled`, 10*time.Second, "the refusal")
	a.click("Cancel")
	if n := eval[int](a, `document.querySelectorAll("#messages .msg.out[data-file]").length`); n != 3 {
		t.Errorf("after the refusal %d files are shown", n)
	}
	// Files go to the relays only: the host saw nothing but the bundle.
	checkHostLog(t, host.Log())
}

// BenchmarkFileTransfer: one 100 MiB file from Alice's pick to Bob's
// "Save" (Bob presses Download as soon as the file appears); reports MB/s
// and the longest main-thread task on either page during the transfer.
// Run: make build && WISP_ROOT=$PWD go test -tags e2e -run '^$' -bench FileTransfer -benchtime 1x ./web/e2e/
func BenchmarkFileTransfer(b *testing.B) {
	benchmarkFile(b, 100<<20)
}

// BenchmarkFileMemory sends a 500 MiB file and reports the peak memory
// of each core (the wasm linear memory, which never shrinks, as the
// Settings page shows it) next to the figures of BenchmarkFileTransfer.
func BenchmarkFileMemory(b *testing.B) {
	benchmarkFile(b, 500<<20)
}

func benchmarkFile(b *testing.B, size int) {
	_, base := hostWithTwoRelays(b)
	path := filepath.Join(b.TempDir(), "big.bin")
	data := make([]byte, size)
	if _, err := rand.Read(data); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		alice, bob := aliceAndBob(b, base)
		for _, p := range []*tab{alice, bob} {
			eval[bool](p, `(() => { window.__longest = 0; new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__longest = Math.max(window.__longest, e.duration); }).observe({ type: "longtask" }); return true })()`)
		}
		start := time.Now()
		alice.attach("", path)
		bob.waitJS(`document.querySelector("#messages .msg.in[data-file='available']") !== null`, 5*time.Minute, "the file message")
		up := time.Since(start)
		bob.click("Download")
		bob.waitJS(`document.querySelector("#messages .msg.in[data-file='downloaded']") !== null`, 5*time.Minute, "the download")
		total := time.Since(start)
		mbps := float64(len(data)) / 1e6 / total.Seconds()
		b.ReportMetric(mbps, "MB/s")
		b.ReportMetric(float64(len(data))/1e6/up.Seconds(), "upload-MB/s")
		b.ReportMetric(eval[float64](alice, `window.__longest`), "ms-longest-task-sender")
		b.ReportMetric(eval[float64](bob, `window.__longest`), "ms-longest-task-receiver")
		downloads := allowDownloads(b, bob)
		saveStart := time.Now()
		bob.click("Save")
		if got := waitFile(b, downloads, "big.bin"); len(got) != len(data) {
			b.Fatalf("saved %d bytes", len(got))
		}
		b.ReportMetric(float64(len(data))/1e6/time.Since(saveStart).Seconds(), "save-MB/s")
		b.ReportMetric(eval[float64](bob, `window.__longest`), "ms-longest-task-with-save")
		baseline := browserWebSocketMBps(b, alice, len(data))
		b.ReportMetric(baseline, "baseline-MB/s")
		b.ReportMetric(mbps/baseline, "ratio")
		for _, p := range []struct {
			tab  *tab
			role string
		}{{alice, "sender"}, {bob, "receiver"}} {
			p.tab.click("Settings")
			p.tab.waitVisible("#core-memory")
			b.ReportMetric(eval[float64](p.tab, `+document.querySelector("#core-memory").dataset.sys`)/(1<<20), "MiB-peak-"+p.role)
		}
		alice.close()
		bob.close()
	}
}

// TestUploadResumesAfterReload reloads Alice's page in the middle of an
// upload: the conversation then shows the upload as interrupted; a file
// of another size is refused; picking the same file again finishes the
// upload from the chunks already on the relay, and Bob saves exactly the
// original bytes.
func TestUploadResumesAfterReload(t *testing.T) {
	_, base := hostWithTwoRelays(t)
	a, b := aliceAndBob(t, base)
	dir := t.TempDir()
	data := make([]byte, 60<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "film.bin")
	other := filepath.Join(dir, "other.bin")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(other, data[:1<<20], 0o644); err != nil {
		t.Fatal(err)
	}

	a.attach("", path)
	a.waitJS(`(() => { const p = document.querySelector("#messages .msg.upload .transfer progress"); return p && p.value > 0 })()`, 60*time.Second, "the upload under way")
	a.run(chromedp.Reload())
	a.waitVisible("#app")
	a.openContact("Bob")
	a.waitJS(`document.querySelector("#messages .msg.upload[data-state='interrupted']")?.textContent.includes("Upload interrupted")`, 30*time.Second, "the interrupted upload")
	a.screenshot(t.Name() + "-interrupted")
	if text := eval[string](a, `document.querySelector("#messages .msg.upload").textContent`); strings.Contains(text, " 0 B of") {
		t.Fatalf("nothing of the upload was kept: %q", text)
	}
	a.checkA11y("interrupted upload")
	if n := eval[int](b, `document.querySelectorAll("#messages .msg.in[data-file]").length`); n != 0 {
		t.Fatalf("Bob sees %d files before the upload finished", n)
	}

	a.click("Resume")
	a.run(chromedp.SetUploadFiles(chromedp.CSS("#resume-input"), []string{other}))
	a.waitJS(`document.querySelector("#toast")?.textContent.includes("Pick film.bin")`, 10*time.Second, "the refusal of another file")
	a.click("Resume")
	a.run(chromedp.SetUploadFiles(chromedp.CSS("#resume-input"), []string{path}))
	a.waitJS(`document.querySelector("#messages .msg.out[data-file='sent']") !== null && !document.querySelector("#messages .msg.upload")`, 120*time.Second, "the resumed upload")

	b.waitJS(`document.querySelector("#messages .msg.in[data-file='available']") !== null`, 60*time.Second, "the file at Bob")
	b.click("Download")
	b.waitJS(`document.querySelector("#messages .msg.in[data-file='downloaded']") !== null`, 120*time.Second, "the download")
	downloads := allowDownloads(t, b)
	b.click("Save")
	if got := waitFile(t, downloads, "film.bin"); sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatalf("saved %d bytes with another SHA-256", len(got))
	}
}
