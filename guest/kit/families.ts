// The kit base families: Debian packages layered FROM the agent base (vibebox/agent:base), so a
// kit that needs ffmpeg or pandoc says `base: 'docs'` instead of listing them. Pure data and
// naming: the image is built lazily in the VM (guest/containers/kit-image.ts), tagged by content.

export interface Family {
  /** Debian packages (the agent base's suite), installed with --no-install-recommends. */
  apt: readonly string[];
  /** npm packages installed globally on top. */
  npm: readonly string[];
  /** What the family is for, for the environment block and README. */
  about: string;
}

export const FAMILIES = {
  media: { apt: ['ffmpeg', 'imagemagick', 'sox', 'yt-dlp'], npm: [], about: 'audio, video and images: ffmpeg, ImageMagick, SoX, yt-dlp' },
  // pandoc's PDF engine is WeasyPrint (HTML + CSS to PDF): a few MB of Python, against LaTeX's
  // hundreds; LibreOffice (headless, no GUI) converts office formats, and docx to PDF too.
  docs: { apt: ['pandoc', 'weasyprint', 'qpdf', 'pdftk-java', 'libreoffice-writer-nogui', 'fonts-dejavu-core'], npm: [], about: 'documents: pandoc (PDF through WeasyPrint), qpdf, pdftk, LibreOffice headless' },
  python: { apt: ['python3-numpy', 'python3-pandas', 'python3-pil', 'python3-scipy', 'python3-matplotlib'], npm: [], about: 'Python data stack from Debian: numpy, pandas, Pillow, SciPy, Matplotlib' },
  // Playwright's own browser download is not reachable from here; playwright-core (npm) drives
  // Debian's Chromium through executablePath instead.
  browser: { apt: ['chromium', 'fonts-liberation', 'fonts-noto-core', 'fonts-noto-color-emoji'], npm: ['playwright-core'], about: 'headless Chromium with fonts; playwright-core drives it (executablePath /usr/bin/chromium)' },
} as const satisfies Record<string, Family>;

export type FamilyName = keyof typeof FAMILIES;

/** `docs` or `vibebox/docs` name a family; anything else is not one. */
export function familyOf(base: string | undefined): FamilyName | undefined {
  if (!base) return undefined;
  const n = base.startsWith('vibebox/') ? base.slice('vibebox/'.length) : base;
  return Object.prototype.hasOwnProperty.call(FAMILIES, n) ? (n as FamilyName) : undefined;
}

/** Every package a kit's image holds: its family's, then its own (sorted, deduplicated per kind). */
export function kitPackages(base: string | undefined, own: { apt?: readonly string[]; npm?: readonly string[] } | undefined): { apt: string[]; npm: string[] } {
  const f = familyOf(base);
  const set = (a: readonly string[], b: readonly string[] | undefined): string[] => [...new Set([...a, ...(b ?? [])])].sort();
  return { apt: set(f ? FAMILIES[f].apt : [], own?.apt), npm: set(f ? FAMILIES[f].npm : [], own?.npm) };
}
