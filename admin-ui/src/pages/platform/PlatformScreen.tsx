// The platform team's screens: the catalog, pricing, promotions, enforcement, keys, grant
// limits and reason codes, unrated events, webhooks, the audit trail and the ledger's verification.
// Support keys see them read-only; changes need an admin key.
import type { ReactNode } from "react";
import { href } from "../../router.js";
import { ApiKeysPage } from "./ApiKeysPage.js";
import { AuditPage } from "./AuditPage.js";
import { BundlesPage } from "./BundlesPage.js";
import { CreditTypesPage } from "./CreditTypesPage.js";
import { FeaturesPage } from "./FeaturesPage.js";
import { GrantLimitsPage } from "./GrantLimitsPage.js";
import { KillSwitchBanner } from "./KillSwitch.js";
import { PlansPage } from "./PlansPage.js";
import { PricingPage } from "./PricingPage.js";
import { PromotionsPage } from "./PromotionsPage.js";
import { ReasonCodesPage } from "./ReasonCodesPage.js";
import { UnratedPage } from "./UnratedPage.js";
import { VerifyPage } from "./VerifyPage.js";
import { WebhooksPage } from "./WebhooksPage.js";

const pages: [string, string, (isAdmin: boolean) => ReactNode][] = [
  ["features", "Features and enforcement", (isAdmin) => <FeaturesPage isAdmin={isAdmin} />],
  ["credit-types", "Credit types", (isAdmin) => <CreditTypesPage isAdmin={isAdmin} />],
  ["pricing", "Pricing versions", (isAdmin) => <PricingPage isAdmin={isAdmin} />],
  ["bundles", "Bundles", (isAdmin) => <BundlesPage isAdmin={isAdmin} />],
  ["promotions", "Promotions", (isAdmin) => <PromotionsPage isAdmin={isAdmin} />],
  ["plans", "Plans", (isAdmin) => <PlansPage isAdmin={isAdmin} />],
  ["keys", "API keys", (isAdmin) => <ApiKeysPage isAdmin={isAdmin} />],
  ["grant-limits", "Grant limits", (isAdmin) => <GrantLimitsPage isAdmin={isAdmin} />],
  ["reason-codes", "Reason codes", (isAdmin) => <ReasonCodesPage isAdmin={isAdmin} />],
  ["unrated", "Unrated events", (isAdmin) => <UnratedPage isAdmin={isAdmin} />],
  ["webhooks", "Webhooks", (isAdmin) => <WebhooksPage isAdmin={isAdmin} />],
  ["audit", "Audit trail", () => <AuditPage />],
  ["verify", "Verify the ledger", (isAdmin) => <VerifyPage isAdmin={isAdmin} />],
];

/** PlatformScreen is the tab bar of the platform pages and the page asked for. */
export function PlatformScreen({ page, isAdmin }: { page?: string; isAdmin: boolean }) {
  const current = pages.find(([id]) => id === (page ?? "features"));
  return (
    <>
      <h1>Platform</h1>
      <KillSwitchBanner />
      {!isAdmin && <p className="muted">You are signed in with a support key: these screens are read-only.</p>}
      <nav aria-label="Platform" className="tabs">
        {pages.map(([id, title]) => (
          <a key={id} href={href("platform", id)} aria-current={current?.[0] === id ? "page" : undefined}>
            {title}
          </a>
        ))}
      </nav>
      {current ? current[2](isAdmin) : <p className="error">No such platform page: {page}.</p>}
    </>
  );
}
