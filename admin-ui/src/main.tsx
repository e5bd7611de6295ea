// One page, two products: the admin UI (support and platform teams) at /, and the
// customer's own view at /customer (the page a vendor puts in an iframe).
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App.js";
import { CustomerPage } from "./embed/CustomerPage.js";
import "./styles.css";

const root = createRoot(document.getElementById("root")!);
const customerView = window.location.pathname.replace(/\/+$/, "") === "/customer";
root.render(<StrictMode>{customerView ? <CustomerPage /> : <App />}</StrictMode>);
