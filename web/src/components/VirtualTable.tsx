import { useEffect, useRef, useState, type KeyboardEvent, type ReactNode } from 'react';

export interface Column<T> {
  key: string;
  header: ReactNode;
  /** A CSS grid track: `8rem`, `minmax(10rem, 2fr)`, … */
  width: string;
  render: (row: T) => ReactNode;
  /** Text alignment of the column. */
  align?: 'start' | 'end';
}

export interface VirtualTableProps<T> {
  rows: readonly T[];
  columns: readonly Column<T>[];
  rowKey: (row: T) => string;
  label: string;
  /** Every row has this height (px): that is what makes the windowing exact. */
  rowHeight?: number;
  /** Largest height of the scrolling area, a CSS length. */
  maxHeight?: string;
  /** The narrowest width before the table scrolls sideways. */
  minWidth?: string;
  rowClassName?: (row: T) => string | undefined;
  selectedKey?: string | null;
  empty?: ReactNode;
  testId?: string;
  /**
   * How many rows the table has, loaded or not (a paged list): rows past `rows.length`
   * are drawn as placeholders until their page arrives, so the scroll bar is the list's.
   */
  totalRows?: number;
  /** Told which rows are drawn (`first` to `last`, placeholders included), so that a paged list loads them. */
  onRangeChange?: (first: number, last: number) => void;
}

const overscan = 8;

/**
 * A table that renders only the rows in view (plus a few), so 10,000 nodes scroll as
 * smoothly as 10. Rows have one fixed height; the body is a tall spacer and the visible
 * rows are placed absolutely in it. ARIA table roles keep it a table to screen readers
 * (aria-rowcount/aria-rowindex tell the real size); the scroller takes the keyboard focus,
 * so arrows, Page Up/Down, Home and End scroll it. A paged list passes the rows it has
 * and its `totalRows`: rows not loaded yet are drawn as placeholders, and
 * `onRangeChange` tells the list which rows are in view, so that it loads them.
 */
export function VirtualTable<T>({
  rows,
  columns,
  rowKey,
  label,
  rowHeight = 36,
  maxHeight = 'max(22rem, calc(100vh - 22rem))',
  minWidth = '56rem',
  rowClassName,
  selectedKey,
  empty,
  testId,
  totalRows,
  onRangeChange,
}: VirtualTableProps<T>) {
  const scroller = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [viewport, setViewport] = useState(600);
  const template = columns.map((c) => c.width).join(' ');

  useEffect(() => {
    const element = scroller.current;
    if (!element) return;
    const observer = new ResizeObserver(() => setViewport(element.clientHeight));
    observer.observe(element);
    setViewport(element.clientHeight);
    return () => observer.disconnect();
  }, []);

  const count = Math.max(rows.length, totalRows ?? 0);

  // Rows shrank (a filter): keep the scroll position inside the table.
  useEffect(() => {
    const element = scroller.current;
    if (element && element.scrollTop > count * rowHeight) element.scrollTop = 0;
  }, [count, rowHeight]);

  const bodyTop = Math.max(0, scrollTop - rowHeight);
  const first = Math.max(0, Math.floor(bodyTop / rowHeight) - overscan);
  const last = Math.min(count, Math.ceil((bodyTop + viewport) / rowHeight) + overscan);
  const visible = rows.slice(first, last);
  const placeholders = Math.max(0, last - Math.max(first, rows.length));

  useEffect(() => {
    onRangeChange?.(first, last);
  }, [first, last, onRangeChange]);

  const onKeyDown = (event: KeyboardEvent<HTMLDivElement>) => {
    const element = scroller.current;
    if (!element || event.target !== element) return;
    const page = Math.max(rowHeight, element.clientHeight - 2 * rowHeight);
    const moves: Record<string, number> = { ArrowDown: rowHeight, ArrowUp: -rowHeight, PageDown: page, PageUp: -page };
    if (event.key in moves) element.scrollTop += moves[event.key] as number;
    else if (event.key === 'Home') element.scrollTop = 0;
    else if (event.key === 'End') element.scrollTop = element.scrollHeight;
    else return;
    event.preventDefault();
  };

  const height = `min(${(count + 1) * rowHeight + 2}px, ${maxHeight})`;

  return (
    <div className="vtable" role="table" aria-label={label} aria-rowcount={count + 1} data-testid={testId}>
      <div
        className="vtable-scroll"
        ref={scroller}
        tabIndex={0}
        aria-label={`${label}: scroll with the arrow keys`}
        style={{ height: count === 0 ? 'auto' : height }}
        onScroll={(e) => setScrollTop(e.currentTarget.scrollTop)}
        onKeyDown={onKeyDown}
      >
        <div className="vtable-inner" style={{ minWidth }}>
          <div role="rowgroup" className="vtable-head">
            <div role="row" aria-rowindex={1} className="vtable-row" style={{ gridTemplateColumns: template, height: rowHeight }}>
              {columns.map((c) => (
                <div role="columnheader" key={c.key} className={c.align === 'end' ? 'num' : undefined}>
                  {c.header}
                </div>
              ))}
            </div>
          </div>
          <div role="rowgroup" className="vtable-body" style={{ height: count * rowHeight }}>
            {visible.map((row, i) => {
              const index = first + i;
              const key = rowKey(row);
              const extra = rowClassName?.(row);
              return (
                <div
                  role="row"
                  key={key}
                  aria-rowindex={index + 2}
                  data-key={key}
                  className={`vtable-row${extra ? ` ${extra}` : ''}${selectedKey === key ? ' selected' : ''}`}
                  style={{ gridTemplateColumns: template, height: rowHeight, transform: `translateY(${index * rowHeight}px)` }}
                >
                  {columns.map((c) => (
                    <div role="cell" key={c.key} className={c.align === 'end' ? 'num' : undefined}>
                      {c.render(row)}
                    </div>
                  ))}
                </div>
              );
            })}
            {Array.from({ length: placeholders }, (_, i) => {
              const index = Math.max(first, rows.length) + i;
              return (
                <div
                  role="row"
                  key={`loading-${index}`}
                  aria-rowindex={index + 2}
                  aria-busy="true"
                  className="vtable-row placeholder"
                  style={{ height: rowHeight, transform: `translateY(${index * rowHeight}px)` }}
                >
                  <div role="cell">Loading…</div>
                </div>
              );
            })}
          </div>
        </div>
      </div>
      {count === 0 && empty ? <p className="vtable-empty">{empty}</p> : null}
    </div>
  );
}
