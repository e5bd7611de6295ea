// The embeddable customer view: `<BurndownBalance customerKey={key} baseUrl="https://ledger.example" />`
// inside a React app, or the standalone page at /customer#key=... in an iframe.
export { BurndownBalance, type BurndownBalanceProps } from "./BurndownBalance.js";
