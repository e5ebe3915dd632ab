import { nextTheme, type ThemeChoice } from '../lib/theme';

const themeLabel: Record<ThemeChoice, string> = { system: 'System', light: 'Light', dark: 'Dark' };

/** Cycles the colour theme: System (prefers-color-scheme) → Light → Dark. */
export function ThemeToggle({ theme, onTheme }: { theme: ThemeChoice; onTheme: (t: ThemeChoice) => void }) {
  return (
    <button
      type="button"
      className="ghost"
      data-testid="theme-toggle"
      aria-label={`Colour theme: ${themeLabel[theme]}. Switch to ${themeLabel[nextTheme[theme]]}`}
      title={`Theme: ${themeLabel[theme]} (click for ${themeLabel[nextTheme[theme]]})`}
      onClick={() => onTheme(nextTheme[theme])}
    >
      <span aria-hidden="true">{theme === 'dark' ? '☾' : theme === 'light' ? '☀' : '◐'}</span> {themeLabel[theme]}
    </button>
  );
}
