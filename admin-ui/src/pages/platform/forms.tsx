// What the platform forms share: one request id per submission (kept while a refused
// form is sent again unchanged, so a retry cannot apply twice; renewed by any edit and
// after a success), the reason every audited change needs, whole numbers and id lists
// read as people type them, and the pager of the paged lists.
import { type ChangeEvent, useState } from "react";
import { newRequestId } from "../../api.js";
import { idsCountMax, reasonLengthMax } from "./limits.js";

type TextKeys<T> = { [K in keyof T]: T[K] extends string ? K : never }[keyof T];

/** Form is a form's values, its request id and the ways to change them. */
export interface Form<T> {
  values: T;
  requestId: string;
  set: <K extends keyof T>(key: K, value: T[K]) => void;
  /** text binds a string value to an input, select or textarea. */
  text: (key: TextKeys<T>) => { value: string; onChange: (event: ChangeEvent<HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement>) => void };
  /** sent starts over after a success: the values as given (or kept) and a new request id. */
  sent: (values?: T) => void;
}

/** useForm holds a form's values with the request id of its next submission. */
export function useForm<T extends object>(initial: T): Form<T> {
  const [values, setValues] = useState(initial);
  const [requestId, setRequestId] = useState(newRequestId);
  const set = <K extends keyof T>(key: K, value: T[K]) => {
    setValues((current) => ({ ...current, [key]: value }));
    setRequestId(newRequestId());
  };
  return {
    values,
    requestId,
    set,
    text: (key) => ({ value: values[key] as string, onChange: (event) => set(key, event.target.value as T[typeof key]) }),
    sent: (next) => {
      if (next !== undefined) setValues(next);
      setRequestId(newRequestId());
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
