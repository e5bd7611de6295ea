// What the platform forms share: one request id per submission (kept while the same
// request is sent again, so a retry cannot apply twice; new for any other request and
// after a success), the reason every audited change needs, whole numbers and id lists
// read as people type them, and the pager of the paged lists.
import { type ChangeEvent, useRef, useState } from "react";
import { newRequestId } from "../../api.js";
import { idsCountMax, reasonLengthMax } from "./limits.js";

type TextKeys<T> = { [K in keyof T]: T[K] extends string ? K : never }[keyof T];

/** Form is a form's values and the ways to change and send them. */
export interface Form<T> {
  values: T;
  set: <K extends keyof T>(key: K, value: T[K]) => void;
  /** text binds a string value to an input, select or textarea. */
  text: (key: TextKeys<T>) => { value: string; onChange: (event: ChangeEvent<HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement>) => void };
  /**
   * submission gives a request its request id: the same as last time for the same request
   * (a retry after a timeout is answered, not applied again), a new one for any other
   * request (another value, another key, on instead of off).
   */
  submission: <R extends object>(request: R) => R & { requestId: string };
  /** sent starts over after a success: the values as given (or kept), and the next request gets a new id even if it is the same. */
  sent: (values?: T) => void;
}

/** signatureOf is a request as text, bigints included, to tell one request from another. */
function signatureOf(request: object): string {
  return JSON.stringify(request, (_key, value: unknown) => (typeof value === "bigint" ? `${value}n` : value));
}

/** useForm holds a form's values and the request id of its last submission. */
export function useForm<T extends object>(initial: T): Form<T> {
  const [values, setValues] = useState(initial);
  const last = useRef<{ signature: string; requestId: string } | null>(null);
  const set = <K extends keyof T>(key: K, value: T[K]) => setValues((current) => ({ ...current, [key]: value }));
  return {
    values,
    set,
    text: (key) => ({ value: values[key] as string, onChange: (event) => set(key, event.target.value as T[typeof key]) }),
    submission: (request) => {
      const signature = signatureOf(request);
      if (last.current?.signature !== signature) last.current = { signature, requestId: newRequestId() };
      return { ...request, requestId: last.current.requestId };
    },
    sent: (next) => {
      if (next !== undefined) setValues(next);
      last.current = null;
    },
  };
}

/** ReasonField is the "why" an audited change records. */
export function ReasonField({ value, onChange, required = true }: { value: string; onChange: (value: string) => void; required?: boolean }) {
  return (
    <label>
      Reason (for the audit trail{required ? "" : ", optional"})
      <input value={value} onChange={(event) => onChange(event.target.value)} maxLength={reasonLengthMax} required={required} />
    </label>
  );
}

/** parseWhole reads a whole number of units (not credits: no scale) as a bigint. */
export function parseWhole(text: string, what: string): bigint {
  const cleaned = text.trim().replace(/[,_\s]/g, "");
  if (!/^\d+$/.test(cleaned)) throw new Error(`${what} must be a whole number, such as 1 or 1,000.`);
  return BigInt(cleaned);
}

/** parseIds reads customer ids separated by commas, spaces or lines, each once, at most idsCountMax. */
export function parseIds(text: string): string[] {
  const ids = [...new Set(text.split(/[\s,]+/).filter((id) => id !== ""))];
  if (ids.length > idsCountMax) throw new Error(`List at most ${idsCountMax.toLocaleString("en-US")} customers.`);
  return ids;
}

/** problemOf runs a parse and returns its message, or null when the text reads. */
export function problemOf(parse: () => unknown): string | null {
  try {
    parse();
    return null;
  } catch (error) {
    return (error as Error).message;
  }
}

/** usePages keeps the page tokens of a list read newest (or oldest) first. */
export function usePages(): { token: string; page: number; back: (() => void) | null; next: (token: string) => void; reset: () => void } {
  const [tokens, setTokens] = useState<string[]>([""]);
  return {
    token: tokens[tokens.length - 1],
    page: tokens.length,
    back: tokens.length > 1 ? () => setTokens(tokens.slice(0, -1)) : null,
    next: (token) => setTokens([...tokens, token]),
    reset: () => setTokens([""]),
  };
}

/** Pager moves through a paged list; labels say which way in time. */
export function Pager({ pages, nextToken, backLabel, nextLabel }: { pages: ReturnType<typeof usePages>; nextToken: string | undefined; backLabel: string; nextLabel: string }) {
  return (
    <div className="pager">
      <button type="button" disabled={pages.back === null} onClick={() => pages.back?.()}>
        {backLabel}
      </button>
      <span className="muted">Page {pages.page}</span>
      <button type="button" disabled={!nextToken} onClick={() => nextToken && pages.next(nextToken)}>
        {nextLabel}
      </button>
    </div>
  );
}

/** Done says a change went through, as a status the screen reader announces. */
export function Done({ text }: { text: string | null }) {
  return text ? <p className="success" role="status">{text}</p> : null;
}

/** AdminOnly says why a support key sees no form where an admin would change something. */
export function AdminOnly({ what }: { what: string }) {
  return <p className="muted">Only an admin key can {what}.</p>;
}
