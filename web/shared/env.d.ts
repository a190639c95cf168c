/** Vite turns CSS imports into stylesheet links; for the type checker they are modules without exports. */
declare module '*.css';
