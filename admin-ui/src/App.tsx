// The admin UI's shell: sign in with an API key (support, admin or finance), then find a
// customer or, for admins, run the platform; a finance key sees the finance report only.
// Every call carries the person's own key.
import { TransportProvider, useQuery } from "@connectrpc/connect-query";
import { QueryClientProvider } from "@tanstack/react-query";
import { type GetCallerResponse, LedgerService } from "@burndown/sdk/gen/burndown/v1/ledger_service_pb.js";
import { Role } from "@burndown/sdk/gen/burndown/v1/types_pb.js";
import { type FormEvent, useMemo, useState } from "react";
import { newQueryClient, storedKey, storeKey, transportFor } from "./api.js";
import { CallerContext } from "./caller.js";
import { ApprovalsScreen } from "./pages/ApprovalsScreen.js";
import { CustomerScreen } from "./pages/CustomerScreen.js";
import { CustomersScreen } from "./pages/CustomersScreen.js";
import { DisputesScreen } from "./pages/DisputesScreen.js";
import { ExplainScreen } from "./pages/ExplainScreen.js";
import { FinanceScreen } from "./pages/FinanceScreen.js";
import { PlatformScreen } from "./pages/platform/PlatformScreen.js";
import { href, useRoute } from "./router.js";
import { ErrorNote, Loading } from "./ui.js";

export function App() {
  const [apiKey, setApiKey] = useState<string | null>(storedKey);
  const signOut = () => {
    storeKey(null);
    setApiKey(null);
  };
  if (apiKey === null) {
    return (
      <SignIn
        onKey={(key) => {
          storeKey(key);
          setApiKey(key);
        }}
      />
    );
  }
  return <SignedIn key={apiKey} apiKey={apiKey} onSignOut={signOut} />;
}

function SignIn({ onKey }: { onKey: (key: string) => void }) {
  const [key, setKey] = useState("");
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (key.trim() !== "") onKey(key.trim());
  };
  return (
    <main className="sign-in">
      <h1>Burndown</h1>
      <form onSubmit={submit} className="card">
        <h2>Sign in</h2>
        <p className="muted">Paste an API key of role support, admin or finance. It stays in this tab only.</p>
        <label>
          API key
          <input type="password" autoComplete="off" value={key} onChange={(event) => setKey(event.target.value)} placeholder="bd_…" />
        </label>
        <button type="submit" className="primary">
          Sign in
        </button>
      </form>
    </main>
  );
}

function SignedIn({ apiKey, onSignOut }: { apiKey: string; onSignOut: () => void }) {
  const transport = useMemo(() => transportFor(apiKey), [apiKey]);
  const queryClient = useMemo(newQueryClient, []);
  return (
    <TransportProvider transport={transport}>
      <QueryClientProvider client={queryClient}>
        <Shell onSignOut={onSignOut} />
      </QueryClientProvider>
    </TransportProvider>
  );
}

const roleNames: Record<number, string> = { [Role.SERVICE]: "service", [Role.SUPPORT]: "support", [Role.ADMIN]: "admin", [Role.CUSTOMER]: "customer", [Role.FINANCE]: "finance" };

function Shell({ onSignOut }: { onSignOut: () => void }) {
  const caller = useQuery(LedgerService.method.getCaller, {});
  const route = useRoute();
  if (caller.isPending) return <Loading what="your key" />;
  if (caller.error) {
    return (
      <main className="sign-in">
        <ErrorNote error={caller.error} prefix="Could not sign in" />
        <button type="button" onClick={onSignOut}>
          Use another key
        </button>
      </main>
    );
  }
  const me = caller.data;
  if (me.role === Role.CUSTOMER) {
    return (
      <main className="sign-in">
        <p>
          This is a customer key: it opens the customer's own view, at <a href="/customer">/customer</a>. The admin UI needs a key of role support, admin or finance.
        </p>
        <button type="button" onClick={onSignOut}>
          Use another key
        </button>
      </main>
    );
  }
  const isAdmin = me.role === Role.ADMIN;
  const [section] = route;
  if (me.role === Role.FINANCE) return <FinanceShell me={me} onSignOut={onSignOut} />;
  return (
    <CallerContext.Provider value={me}>
      <div className="layout">
        <nav aria-label="Main" className="sidebar">
          <a className="brand" href={href()}>
            Burndown
          </a>
          <a href={href()} aria-current={section === undefined || section === "customers" ? "page" : undefined}>
            Customers
          </a>
          <a href={href("disputes")} aria-current={section === "disputes" ? "page" : undefined}>
            Disputes
          </a>
          <a href={href("approvals")} aria-current={section === "approvals" ? "page" : undefined}>
            Approvals
          </a>
          <a href={href("platform")} aria-current={section === "platform" ? "page" : undefined}>
            Platform
          </a>
          {isAdmin && (
            <a href={href("finance")} aria-current={section === "finance" ? "page" : undefined}>
              Finance
            </a>
          )}
          <SignedInAs me={me} onSignOut={onSignOut} />
        </nav>
        <main className="content">
          {section === "customers" && route[1] ? (
            <CustomerScreen customerId={route[1]} tab={route[2]} />
          ) : section === "events" && route[1] ? (
            <ExplainScreen usageId={route[1]} />
          ) : section === "disputes" ? (
            <DisputesScreen disputeId={route[1]} />
          ) : section === "approvals" ? (
            <ApprovalsScreen />
          ) : section === "platform" ? (
            <PlatformScreen page={route[1]} isAdmin={isAdmin} />
          ) : section === "finance" && isAdmin ? (
            <FinanceScreen />
          ) : (
            <CustomersScreen />
          )}
        </main>
      </div>
    </CallerContext.Provider>
  );
}

/** SignedInAs shows the key signed in, its role, and the way out: the foot of every sidebar. */
function SignedInAs({ me, onSignOut }: { me: GetCallerResponse; onSignOut: () => void }) {
  return (
    <div className="who">
      <span>{me.name || me.keyId}</span>
      <span className="badge">{roleNames[me.role] ?? "?"}</span>
      <button type="button" className="link" onClick={onSignOut}>
        Sign out
      </button>
    </div>
  );
}

/**
 * FinanceShell is all a finance key sees: the finance report, whatever the address says.
 * Its key may call nothing else, so no other screen could load.
 */
function FinanceShell({ me, onSignOut }: { me: GetCallerResponse; onSignOut: () => void }) {
  return (
    <CallerContext.Provider value={me}>
      <div className="layout">
        <nav aria-label="Main" className="sidebar">
          <a className="brand" href={href("finance")}>
            Burndown
          </a>
          <a href={href("finance")} aria-current="page">
            Finance
          </a>
          <SignedInAs me={me} onSignOut={onSignOut} />
        </nav>
        <main className="content">
          <FinanceScreen />
        </main>
      </div>
    </CallerContext.Provider>
  );
}
