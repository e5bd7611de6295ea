// Find a customer by id or name: the support person's first step on every ticket.
import { useQuery } from "@connectrpc/connect-query";
import { AdminService } from "@burndown/sdk/gen/burndown/v1/admin_service_pb.js";
import { type FormEvent, useState } from "react";
import { dateOf, formatDate } from "../format.js";
import { href, navigate } from "../router.js";
import { ErrorNote, Loading, Section } from "../ui.js";

export function CustomersScreen() {
  const [typed, setTyped] = useState("");
  const [query, setQuery] = useState("");
  const search = useQuery(AdminService.method.searchCustomers, { query, pageSize: 50 }, { enabled: query !== "" });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    setQuery(typed.trim());
  };
  const results = search.data?.customers ?? [];
  return (
    <>
      <h1>Customers</h1>
      <form role="search" onSubmit={submit} className="search">
        <label htmlFor="customer-search">Find a customer by id or name</label>
        <div className="row">
          <input id="customer-search" type="search" value={typed} onChange={(event) => setTyped(event.target.value)} placeholder="acme, or Acme Corp" autoFocus />
          <button type="submit" className="primary">
            Search
          </button>
        </div>
      </form>
      {query !== "" && (
        <Section title={`Results for “${query}”`}>
          {search.isPending ? (
            <Loading what="customers" />
          ) : search.error ? (
            <ErrorNote error={search.error} />
          ) : results.length === 0 ? (
            <p className="muted">No customer matches. Check the id, or search part of the name.</p>
          ) : (
            <table>
              <thead>
                <tr>
                  <th scope="col">Customer id</th>
                  <th scope="col">Name</th>
                  <th scope="col">Since</th>
                </tr>
              </thead>
              <tbody>
                {results.map((customer) => (
                  <tr key={customer.customerId} className="clickable" onClick={() => navigate("customers", customer.customerId)}>
                    <td>
                      <a href={href("customers", customer.customerId)}>{customer.customerId}</a>
                    </td>
                    <td>{customer.displayName}</td>
                    <td>{formatDate(dateOf(customer.createTime))}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {search.data?.truncated && <p className="muted">More customers match; narrow the search.</p>}
        </Section>
      )}
    </>
  );
}
