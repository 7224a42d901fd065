// Renders GraphiQL against this server's /graphql endpoint (assets are served locally: no CDN).
const defaultQuery = `# Welcome to shopgraph. The Docs pane (book icon, top left) describes every type and field.
{
  products(first: 5, sortBy: { field: RATING, direction: DESC }) {
    totalCount
    edges {
      node {
        name
        priceRange { min { amount currency } }
        ratingSummary { average count }
        category { name parent { name } }
      }
    }
    pageInfo { hasNextPage endCursor }
  }
}
`;
const fetcher = GraphiQL.createFetcher({ url: window.location.pathname });
const root = ReactDOM.createRoot(document.getElementById("graphiql"));
root.render(
  React.createElement(GraphiQL, {
    fetcher,
    defaultQuery,
    defaultEditorToolsVisibility: true,
    shouldPersistHeaders: false,
  }),
);
