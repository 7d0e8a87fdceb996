import { defineConfig } from '@playwright/test';
import { chromium } from './playwright.config';

// The dashboard benchmark (scripts/bench-dashboard.sh): same servers and browser as the tests,
// one worker, figures printed as a table; nothing in here passes or fails on a time.
export default defineConfig({
  testDir: './bench',
  testMatch: /\.bench\.ts$/,
  globalSetup: './harness/global-setup.ts',
  timeout: 180_000,
  workers: 1,
  reporter: [['list']],
  outputDir: './test-results/bench',
  projects: [{ name: 'bench', use: { javaScriptEnabled: true, viewport: { width: 1280, height: 720 }, launchOptions: chromium } }],
});
