// A hash router: the server serves one page, and every screen has a link a support
// person can paste into a ticket (#/customers/acme, #/events/42).
import { useEffect, useState } from "react";

export function currentRoute(): string[] {
  return window.location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
}

export function useRoute(): string[] {
  const [route, setRoute] = useState(currentRoute);
  useEffect(() => {
    const onChange = () => setRoute(currentRoute());
    window.addEventListener("hashchange", onChange);
    return () => window.removeEventListener("hashchange", onChange);
  }, []);
  return route;
}

export function href(...parts: (string | bigint)[]): string {
  return `#/${parts.map((part) => encodeURIComponent(String(part))).join("/")}`;
}

export function navigate(...parts: (string | bigint)[]): void {
  window.location.hash = href(...parts).slice(1);
}
