// The deployment's settings for the pages, which the server puts in meta tags when it
// serves them (server/src/rpc/admin-ui.ts): none is a secret.

/** checkoutUrlSetting is BURNDOWN_CHECKOUT_URL as served, or null when the deployment set none. */
export function checkoutUrlSetting(): string | null {
  const content = document.querySelector<HTMLMetaElement>('meta[name="burndown-checkout-url"]')?.content ?? "";
  return /^https?:\/\//.test(content) && content.includes("{order_id}") ? content : null;
}
