// Locators, actions and checks for the 3D pipeline view: its HUD labels, and its canvas read
// back pixel by pixel (the WebGL context keeps its drawing buffer for this).
import { Page, Locator, expect } from '@playwright/test';

export type Rgb = [number, number, number];

export const STATUS_RGB: Record<string, Rgb> = {
  healthy: [0x22, 0xc5, 0x5e],
  paused: [0xf5, 0x9e, 0x0b],
  degraded: [0xea, 0xb3, 0x08],
  down: [0xef, 0x44, 0x44],
};
export const BUS_OK: Rgb = [0x22, 0xd3, 0xee];

export function canvas(page: Page): Locator {
  return page.locator('canvas.pipeline-canvas');
}

export function hudLabel(page: Page, name: string): Locator {
  return page.locator(`.hud-label[data-worker="${name}"]`);
}

export function badge(page: Page, name: string): Locator {
  return page.locator(`.hud-badge[data-worker="${name}"]`);
}

/** Waits until the scene has drawn at least `frames` frames. */
export async function waitForFrames(page: Page, frames = 30): Promise<void> {
  await expect
    .poll(async () => Number((await canvas(page).getAttribute('data-frames')) ?? 0), { timeout: 15_000 })
    .toBeGreaterThanOrEqual(frames);
}

/** A point of the canvas in CSS pixels, read from a `data-*` attribute written as "x,y". */
export async function point(el: Locator, attribute: string): Promise<[number, number]> {
  await expect(el).toHaveAttribute(attribute, /^\d+,\d+$/);
  const [x, y] = ((await el.getAttribute(attribute)) ?? '').split(',').map(Number);
  return [x, y];
}

/** The RGB pixels of a (2r+1)² square around each CSS-pixel point of the last frame. */
export async function pixelsAround(page: Page, points: [number, number][], r = 4): Promise<Rgb[][]> {
  return page.evaluate(
    ([points, r]) => {
      const c = document.querySelector('canvas.pipeline-canvas') as HTMLCanvasElement;
      const scale = c.width / c.clientWidth;
      const copy = document.createElement('canvas');
      copy.width = c.width;
      copy.height = c.height;
      const g = copy.getContext('2d')!;
      g.drawImage(c, 0, 0);
      return points.map(([x, y]) => {
        const side = 2 * r + 1;
        const d = g.getImageData(Math.round(x * scale) - r, Math.round(y * scale) - r, side, side).data;
        const out: [number, number, number][] = [];
        for (let i = 0; i < d.length; i += 4) out.push([d[i], d[i + 1], d[i + 2]]);
        return out;
      });
    },
    [points, r] as const,
  );
}

export function near(a: Rgb, b: Rgb, tolerance = 24): boolean {
  return Math.abs(a[0] - b[0]) <= tolerance && Math.abs(a[1] - b[1]) <= tolerance && Math.abs(a[2] - b[2]) <= tolerance;
}

/** How many pixels of `pixels` have the colour `rgb`. */
export function count(pixels: Rgb[], rgb: Rgb): number {
  return pixels.filter((p) => near(p, rgb)).length;
}

/** Waits until the tube at a worker's probe point shows a status colour. */
export async function expectTubeColour(page: Page, name: string, status: keyof typeof STATUS_RGB): Promise<void> {
  await expect
    .poll(
      async () => {
        const at = await point(hudLabel(page, name), 'data-probe');
        const [pixels] = await pixelsAround(page, [at]);
        return count(pixels, STATUS_RGB[status]);
      },
      { message: `${name}'s tube is ${status}`, timeout: 8_000 },
    )
    .toBeGreaterThanOrEqual(4);
}

/** A fingerprint of the canvas around a point, to tell whether anything moved there. */
export async function fingerprint(page: Page, at: [number, number], r = 12): Promise<string> {
  const [pixels] = await pixelsAround(page, [at], r);
  return pixels.map((p) => p.join(',')).join(';');
}
