// The admin UI and the customer view: one page app, built into dist/ and served by the
// server on its HTTP port (same origin as the API, so no CORS and no second process).
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

export default defineConfig({
  root: import.meta.dirname,
  base: "/",
  plugins: [react()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // Served from our own origin; no source maps of a support tool shipped by default.
    sourcemap: false,
    chunkSizeWarningLimit: 1_500,
  },
});
