// Runs Lighthouse 12 (accessibility and best practices) on one URL, in light and in dark mode,
// in Debian's Chromium; prints one JSON object: each mode's scores and the audits that failed.
// Usage: node lighthouse.mjs <url> <node dir with node_modules> <screenshot dir>
// Dark mode is emulated on the page through puppeteer before Lighthouse loads it: Lighthouse's
// CLI has no prefers-color-scheme setting.
import { join } from "node:path";
import { writeFileSync, mkdirSync } from "node:fs";
import { pathToFileURL } from "node:url";

const [url, nodeDir, shotDir] = process.argv.slice(2);
if (!url || !nodeDir || !shotDir) {
  console.error("usage: node lighthouse.mjs <url> <node dir> <screenshot dir>");
  process.exit(2);
}
const load = (path) => import(pathToFileURL(join(nodeDir, "node_modules", path)).href);
const { default: lighthouse } = await load("lighthouse/core/index.js");
const { default: puppeteer } = await load("puppeteer-core/lib/esm/puppeteer/puppeteer-core.js");

const browser = await puppeteer.launch({
  executablePath: process.env.CHROME_PATH || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
});
const report = {};
try {
  for (const scheme of ["light", "dark"]) {
    const page = await browser.newPage();
    await page.emulateMediaFeatures([{ name: "prefers-color-scheme", value: scheme }]);
    const result = await lighthouse(url, {
      output: "json",
      logLevel: "error",
      onlyCategories: ["accessibility", "best-practices"],
    }, undefined, page);
    const lhr = result.lhr;
    const failing = Object.values(lhr.audits)
      .filter((a) => a.score !== null && a.score < 1 && a.scoreDisplayMode !== "informative" && a.scoreDisplayMode !== "notApplicable" && a.scoreDisplayMode !== "manual")
      .map((a) => ({ id: a.id, title: a.title, items: (a.details?.items || []).slice(0, 5).map((i) => i.node?.snippet || i.description || i.url || i.source?.url || JSON.stringify(i).slice(0, 200)) }));
    report[scheme] = {
      accessibility: Math.round(lhr.categories.accessibility.score * 100),
      "best-practices": Math.round(lhr.categories["best-practices"].score * 100),
      failing,
      runtimeError: lhr.runtimeError?.message ?? null,
    };
    // What Lighthouse saw, for a person to check the colour scheme.
    mkdirSync(shotDir, { recursive: true });
    writeFileSync(join(shotDir, `lighthouse-${scheme}.png`), await page.screenshot());
    report[scheme].scheme = await page.evaluate(() => matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light");
    await page.close();
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
