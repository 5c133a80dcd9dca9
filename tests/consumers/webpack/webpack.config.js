export default {
  entry: "./main.js",
  output: { path: new URL("./public/", import.meta.url).pathname },
};
