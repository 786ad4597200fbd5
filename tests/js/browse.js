// Drives Debian's Chromium (headless, through npm `playwright-core`) over the public pages of
// a running hub, at a phone and a desktop viewport: `/`, the marketplace, a search, a category
// chip, a tag link, and two agent pages, saving a full-page PNG of every step.
//
//   node tests/js/browse.js <base URL> <output directory>
//
// (or BROWSE_BASE_URL and BROWSE_OUT_DIR). BROWSE_SPEC is a JSON object naming what the seeded
// hub holds (tests/api/browser.rs writes it):
//
//   { "all": [names of every listed agent], "xssName": "<script>alert(1)</script>",
//     "privateName": "...", "privateSlug": "...",
//     "search": "translat", "searchExpect": [names],
//     "category": "Translation" (a chip label), "categoryExpect": [names],
//     "tagFrom": "Translator Pro" (the card whose tag link is followed), "tag": "llm",
//     "tagExpect": [names], "open": "Translator Pro" (a second agent page to visit) }
//
// Fails (exit 1, every problem on stderr) when a JavaScript dialog opens, the console reports
// an error, a page holds a <script> element, the XSS name is not literal text on the listing
// and on its own page, the private agent shows anywhere, a search or filter does not narrow
// the list to the expected agents, or a page scrolls sideways. Prints a JSON summary on stdout.
"use strict";

const fs = require("fs");
const path = require("path");
const { chromium } = require("playwright-core");

const CHROMIUM = process.env.BROWSE_CHROMIUM || "/usr/bin/chromium";
const VIEWPORTS = [
  { name: "phone", width: 390, height: 844, isMobile: true, hasTouch: true, deviceScaleFactor: 2 },
  { name: "desktop", width: 1366, height: 900, isMobile: false, hasTouch: false, deviceScaleFactor: 1 },
];

function die(message) {
  process.stderr.write(`browse.js: ${message}\n`);
  process.exit(2);
}

const base = (process.argv[2] || process.env.BROWSE_BASE_URL || "").replace(/\/+$/, "");
const outDir = process.argv[3] || process.env.BROWSE_OUT_DIR;
if (!base || !outDir) die("usage: node browse.js <base URL> <output directory> (BROWSE_SPEC in the environment)");
if (!fs.existsSync(CHROMIUM)) {
  die(`${CHROMIUM} is missing: run scripts/test (it installs Debian's chromium), or apt-get install chromium`);
}
let spec;
try {
  spec = JSON.parse(process.env.BROWSE_SPEC || "");
} catch (e) {
  die(`BROWSE_SPEC must be a JSON object (${e.message})`);
}
for (const key of ["all", "xssName", "privateName", "privateSlug", "search", "searchExpect",
  "category", "categoryExpect", "tagFrom", "tag", "tagExpect", "open"]) {
  if (spec[key] === undefined) die(`BROWSE_SPEC lacks "${key}"`);
}
fs.mkdirSync(outDir, { recursive: true });

const problems = [];
const sorted = (names) => [...names].sort();
const same = (a, b) => JSON.stringify(sorted(a)) === JSON.stringify(sorted(b));
const show = (names) => JSON.stringify(sorted(names));

async function browse(browser, vp) {
  const context = await browser.newContext({
    viewport: { width: vp.width, height: vp.height },
    deviceScaleFactor: vp.deviceScaleFactor,
    isMobile: vp.isMobile,
    hasTouch: vp.hasTouch,
    colorScheme: "light",
    javaScriptEnabled: true, // the pages carry none; a script that slipped in must be able to show itself
  });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  const fail = (msg) => problems.push(`[${vp.name}] ${msg}`);
  page.on("dialog", async (dialog) => {
    fail(`a JavaScript ${dialog.type()} dialog opened on ${page.url()}: ${JSON.stringify(dialog.message())}`);
    await dialog.dismiss().catch(() => {});
  });
  page.on("console", (msg) => {
    if (msg.type() !== "error") return;
    const from = msg.location()?.url || "";
    // The pages link no icon, so Chromium asks for /favicon.ico and logs the 404; that is the
    // browser's habit, not an error of the pages (it is listed under "ignored" in the summary).
    if (from === `${base}/favicon.ico` && msg.text().includes("404")) {
      ignored.push(`${msg.text()} (${from})`);
      return;
    }
    fail(`console error on ${page.url()}${from && from !== page.url() ? ` (from ${from})` : ""}: ${msg.text()}`);
  });
  page.on("response", (resp) => {
    if (resp.status() >= 400) responses.push(`${resp.status()} ${resp.url()}`);
  });
  page.on("pageerror", (err) => fail(`uncaught exception on ${page.url()}: ${err.message}`));
  page.on("requestfailed", (req) => fail(`request failed: ${req.url()} (${req.failure()?.errorText})`));

  const steps = [];
  const ignored = [];
  const responses = [];
  let n = 0;

  // Checks every page shares, then a full-page screenshot.
  async function step(name) {
    await page.waitForLoadState("load");
    const facts = await page.evaluate(() => ({
      url: location.pathname + location.search,
      title: document.title,
      scripts: document.querySelectorAll("script").length,
      scrollWidth: document.documentElement.scrollWidth,
      clientWidth: document.documentElement.clientWidth,
      innerWidth: window.innerWidth,
      // What sticks out on the right (a box past the edge, or content spilling out of a box
      // that does not scroll), to make an overflow failure readable.
      wide: [...document.querySelectorAll("body *")]
        .filter((el) => el.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5
          || (el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX === "visible"))
        .slice(0, 5)
        .map((el) => `${el.tagName.toLowerCase()}${el.className ? "." + String(el.className).replace(/ /g, ".") : ""} (right ${Math.round(el.getBoundingClientRect().right)}, content ${el.scrollWidth} in ${el.clientWidth})`),
      text: document.body.innerText,
    }));
    if (facts.scripts !== 0) fail(`${name}: ${facts.scripts} <script> element(s) in ${facts.url}`);
    const limit = Math.min(vp.width, facts.innerWidth, facts.clientWidth);
    if (facts.scrollWidth > limit) {
      fail(`${name}: scrolls sideways at ${vp.width}px (scrollWidth ${facts.scrollWidth} > ${limit}) on ${facts.url}; wide: ${facts.wide.join(", ")}`);
    }
    if (facts.text.includes(spec.privateName)) fail(`${name}: the private agent "${spec.privateName}" shows on ${facts.url}`);
    n += 1;
    const file = `${vp.name}-${String(n).padStart(2, "0")}-${name}.png`;
    await page.screenshot({ path: path.join(outDir, file), fullPage: true });
    const record = { step: name, url: facts.url, title: facts.title, screenshot: file, scrollWidth: facts.scrollWidth, width: vp.width };
    steps.push(record);
    return record;
  }

  // The agent names of the listing cards, exactly as text.
  const listed = () => page.locator("ul.grid li.card a.name").allTextContents();

  // Clicks a link and waits for the page it leads to.
  async function follow(locator) {
    await locator.first().waitFor();
    await Promise.all([page.waitForNavigation({ waitUntil: "load" }), locator.first().click()]);
  }

  // 1. The landing page, then its link to the marketplace.
  await page.goto(`${base}/`, { waitUntil: "load" });
  await step("landing");
  await follow(page.locator('main a[href="/marketplace"]'));
  if (new URL(page.url()).pathname !== "/marketplace") fail(`the landing page's link led to ${page.url()}`);
  const all = await listed();
  Object.assign(await step("marketplace"), { names: all });
  if (!same(all, spec.all)) fail(`marketplace lists ${show(all)}, expected ${show(spec.all)}`);
  if (!all.includes(spec.xssName)) fail(`the agent named ${spec.xssName} is not literal text on the marketplace`);
  if (all.includes(spec.privateName)) fail(`the private agent is listed`);

  // 2. Search: type into the form and submit it.
  const searchBox = page.locator('form.filters input[name="search"]');
  await searchBox.click();
  await searchBox.pressSequentially(spec.search, { delay: 10 });
  await follow(page.locator('form.filters button[type="submit"]'));
  const found = await listed();
  Object.assign(await step("search"), { names: found });
  if ((await searchBox.inputValue()) !== spec.search) fail(`the search box lost its text after submitting`);
  if (!same(found, spec.searchExpect)) fail(`search "${spec.search}" lists ${show(found)}, expected ${show(spec.searchExpect)}`);
  if (!(found.length > 0 && found.length < all.length)) fail(`search "${spec.search}" did not narrow the list (${found.length} of ${all.length})`);

  // 3. A category chip (keeps the search).
  await follow(page.locator("ul.chips a", { hasText: new RegExp(`^${spec.category}$`) }));
  const inCategory = await listed();
  Object.assign(await step("category"), { names: inCategory });
  const url = new URL(page.url());
  if (url.searchParams.get("search") !== spec.search) fail(`the category chip dropped the search (${page.url()})`);
  if ((await page.locator("ul.chips a[aria-current]").textContent()) !== spec.category) fail(`the chip ${spec.category} is not marked current`);
  if (!same(inCategory, spec.categoryExpect)) fail(`category ${spec.category} lists ${show(inCategory)}, expected ${show(spec.categoryExpect)}`);
  if (!(inCategory.length > 0 && inCategory.length < found.length)) fail(`category ${spec.category} did not narrow the search (${inCategory.length} of ${found.length})`);

  // 4. A tag link on a card.
  const tagCard = page.locator("li.card", { has: page.locator("a.name", { hasText: spec.tagFrom }) });
  await follow(tagCard.locator(".tags a", { hasText: `#${spec.tag}` }));
  const tagged = await listed();
  Object.assign(await step("tag"), { names: tagged });
  if (new URL(page.url()).searchParams.get("tags") !== spec.tag) fail(`the tag link led to ${page.url()}`);
  if (!same(tagged, spec.tagExpect)) fail(`tag ${spec.tag} lists ${show(tagged)}, expected ${show(spec.tagExpect)}`);
  if (!(tagged.length > 0 && tagged.length < all.length)) fail(`tag ${spec.tag} did not narrow the list (${tagged.length} of ${all.length})`);

  // 5. Back to the whole marketplace (header link), open the XSS agent by its link.
  await follow(page.locator('header.site a[href="/marketplace"]'));
  await follow(page.locator("ul.grid a.name").filter({ hasText: spec.xssName }));
  const xssHeading = await page.locator("main h1").textContent();
  Object.assign(await step("agent-xss"), { heading: xssHeading });
  if (xssHeading !== spec.xssName) fail(`the XSS agent's page heading is ${JSON.stringify(xssHeading)}, expected the literal name`);
  if (!(await page.title()).startsWith(spec.xssName)) fail(`the XSS agent's page title is ${JSON.stringify(await page.title())}`);

  // 6. Back, then a second agent (tools, reviews, reputation).
  await page.goBack({ waitUntil: "load" });
  await follow(page.locator("ul.grid a.name").filter({ hasText: new RegExp(`^${spec.open}$`) }));
  const heading = await page.locator("main h1").textContent();
  Object.assign(await step("agent"), { heading });
  if (heading !== spec.open) fail(`opening ${spec.open} showed ${JSON.stringify(heading)}`);
  for (const section of ["About", "Tools", "How to call it", "Reputation", "Health", "Reviews"]) {
    if ((await page.locator("main h2", { hasText: section }).count()) !== 1) fail(`${spec.open}: no "${section}" section`);
  }

  // 7. The private agent's own address is a 404 that does not name it.
  const priv = await page.request.get(`${base}/marketplace/${spec.privateSlug}`);
  const privBody = await priv.text();
  if (priv.status() !== 404) fail(`/marketplace/${spec.privateSlug} answered ${priv.status()}, expected 404`);
  if (privBody.includes(spec.privateName)) fail(`the 404 page of the private agent names it`);

  await context.close();
  return { steps, httpErrors: [...new Set(responses)], ignored: [...new Set(ignored)] };
}

(async () => {
  const summary = { ok: false, base, outDir: path.resolve(outDir), browser: null, viewports: {}, problems };
  let browser;
  try {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      // Root in a container: no user namespaces for Chromium's sandbox; a small /dev/shm.
      args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
    });
    summary.browser = `chromium ${browser.version()}, playwright-core ${require("playwright-core/package.json").version}`;
    for (const vp of VIEWPORTS) {
      try {
        summary.viewports[vp.name] = { width: vp.width, height: vp.height, ...(await browse(browser, vp)) };
      } catch (e) {
        problems.push(`[${vp.name}] stopped: ${e.message.split("\n")[0]}`);
      }
    }
  } catch (e) {
    problems.push(`could not run ${CHROMIUM}: ${e.message}`);
  } finally {
    if (browser) await browser.close().catch(() => {});
  }
  summary.ok = problems.length === 0;
  process.stdout.write(JSON.stringify(summary, null, 2) + "\n");
  if (!summary.ok) {
    process.stderr.write(`browse.js: ${problems.length} problem(s):\n${problems.map((p) => `  - ${p}`).join("\n")}\n`);
    process.exit(1);
  }
})();
