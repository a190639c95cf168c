/** Small shared pieces: hash routing, error display, a uPlot chart. */
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { ApiError } from './api';

export function useHashRoute(defaultRoute: string): string {
  const read = () => window.location.hash.replace(/^#\/?/, '') || defaultRoute;
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const on = () => setRoute(read());
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return route;
}

export function Tabs(props: { tabs: [string, string][]; current: string; label: string }) {
  return (
    <nav class="tabs" aria-label={props.label}>
      {props.tabs.map(([id, title]) => (
        <a key={id} href={`#/${id}`} aria-current={props.current === id ? 'page' : undefined}>
          {title}
        </a>
      ))}
    </nav>
  );
}

export function ErrorText(props: { error: unknown }) {
  if (!props.error) return null;
  const e = props.error;
  const text = e instanceof ApiError ? `${e.message} (${e.code})` : String((e as Error).message ?? e);
  return (
    <p class="error" role="alert">
      {text}
    </p>
  );
}

/** Loads once per change of `deps`; returns [data, error, reload]. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): [T | null, unknown, () => void] {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [n, setN] = useState(0);
  useEffect(() => {
    let live = true;
    setError(null);
    load().then(
      (d) => live && setData(d),
      (e) => live && setError(e),
    );
    return () => {
      live = false;
    };
  }, [...deps, n]);
  return [data, error, () => setN((x) => x + 1)];
}

const PALETTE = ['#0b5cad', '#c2410c', '#116329', '#7c3aed', '#a4161a', '#0e7490', '#854d0e', '#be185d'];

/** A time-series chart: x in seconds, one series per name. Described for screen readers by `label`. */
export function Chart(props: { x: number[]; series: { name: string; values: (number | null)[] }[]; label: string }) {
  const el = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!el.current) return;
    const width = Math.max(320, el.current.clientWidth || 800);
    const plot = new uPlot(
      {
        width,
        height: 300,
        series: [
          {},
          ...props.series.map((s, i) => ({
            label: s.name,
            stroke: PALETTE[i % PALETTE.length],
            width: 2,
            points: { show: props.x.length < 60 },
          })),
        ],
        axes: [{}, { size: 70 }],
        scales: { x: { time: true } },
      },
      [props.x, ...props.series.map((s) => s.values)] as uPlot.AlignedData,
      el.current,
    );
    return () => plot.destroy();
  }, [props.x, props.series]);
  return <div class="chart" ref={el} role="img" aria-label={props.label} data-points={props.x.length} />;
}
