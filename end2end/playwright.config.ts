import { defineConfig } from '@playwright/test';

// Debian's Chromium (never a downloaded browser), with the flags that work on these machines.
export const chromium = {
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
};

export default defineConfig({
  testDir: './tests',
  globalSetup: './harness/global-setup.ts',
  timeout: 30_000,
  expect: { timeout: 8_000 },
  // The tests share one Redis and change it: run them one after the other.
  workers: 1,
  fullyParallel: false,
  forbidOnly: !!process.env.CI,
  reporter: [['list']],
  outputDir: './test-results',
  projects: [
    { name: 'js-on', testIgnore: /fallback/, use: { javaScriptEnabled: true, launchOptions: chromium } },
    { name: 'js-off', testIgnore: /fallback/, use: { javaScriptEnabled: false, launchOptions: chromium } },
    // No WebGL at all: the page must fall back to the cards by itself.
    {
      name: 'no-webgl',
      testMatch: /fallback/,
      use: { javaScriptEnabled: true, launchOptions: { ...chromium, args: [...chromium.args, '--disable-webgl'] } },
    },
  ],
});
