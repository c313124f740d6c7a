import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// `npm run dev` proxies the API to a running `vigil` (VIGIL_URL, default
// http://127.0.0.1:8080), so the UI and the API share an origin as in production.
const target = process.env.VIGIL_URL ?? 'http://127.0.0.1:8080';

export default defineConfig({
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 2000, sourcemap: false },
  server: { proxy: { '/api': { target, changeOrigin: false }, '/health': { target } } },
  preview: { proxy: { '/api': { target }, '/health': { target } } },
});
