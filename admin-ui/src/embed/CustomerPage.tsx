// The standalone customer page, for a vendor to iframe: /customer#key=<customer key>.
// The key travels in the fragment, which browsers never send to a server or put in a
// Referer; it is moved to this tab's storage and wiped from the address bar at once.
import { type FormEvent, useState } from "react";
import { storedKey, storeKey } from "../api.js";
import { checkoutUrlSetting } from "../settings.js";
import { BurndownBalance } from "./BurndownBalance.js";

function keyFromFragment(): string | null {
  const match = /(?:^#|&)key=([^&]+)/.exec(window.location.hash);
  if (match === null) return null;
  const key = decodeURIComponent(match[1]);
  storeKey(key);
  history.replaceState(null, "", window.location.pathname + window.location.search);
  return key;
}

export function CustomerPage() {
  const [key, setKey] = useState<string | null>(() => keyFromFragment() ?? storedKey());
  const [typed, setTyped] = useState("");
  if (key === null) {
    const submit = (event: FormEvent) => {
      event.preventDefault();
      storeKey(typed.trim());
      setKey(typed.trim());
    };
    return (
      <main className="sign-in">
        <form onSubmit={submit} className="card">
          <h1>Your credits</h1>
          <label>
            Access key
            <input type="password" value={typed} onChange={(event) => setTyped(event.target.value)} autoComplete="off" />
          </label>
          <button type="submit" className="primary">
            Show my credits
          </button>
        </form>
      </main>
    );
  }
  return (
    <main className="customer-page">
      <BurndownBalance customerKey={key} checkoutUrl={checkoutUrlSetting() ?? undefined} />
    </main>
  );
}
