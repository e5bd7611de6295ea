// The platform team's screens: the catalog, pricing, enforcement, keys, unrated events and
// the audit trail. Support keys see them read-only; changes need an admin key.
import { href } from "../../router.js";

const pages: [string, string][] = [
  ["features", "Features and enforcement"],
  ["credit-types", "Credit types"],
  ["pricing", "Pricing versions"],
  ["keys", "API keys"],
  ["unrated", "Unrated events"],
  ["audit", "Audit trail"],
];

export function PlatformScreen({ page, isAdmin }: { page?: string; isAdmin: boolean }) {
  const current = page ?? "features";
  return (
    <>
      <h1>Platform</h1>
      {!isAdmin && <p className="muted">You are signed in with a support key: these screens are read-only.</p>}
      <nav aria-label="Platform" className="tabs">
        {pages.map(([id, title]) => (
          <a key={id} href={href("platform", id)} aria-current={current === id ? "page" : undefined}>
            {title}
          </a>
        ))}
      </nav>
      <p className="muted">{pages.find(([id]) => id === current)?.[1]}</p>
    </>
  );
}
